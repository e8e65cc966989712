# core.mk: what the core library (src/common, store, server, compat) and
# everything linked with it need beyond the Makefile: each library once,
# and the generated sources.
#
# Libraries (Debian packages, scripts/deps.sh):
#   libpq       the PostgreSQL backend (src/store/store_pg*.c), picked at run
#               time by a postgres:// or postgresql:// store URL
#   libxml2     the Scene7 view's SOAP parser (src/compat/scene7_soap.c)
#   libcurl     webhook deliveries (src/server/webhook.c)
#   libcrypto   SHA-256 of token secrets, HMAC-SHA256 of webhook bodies
# TLS is libmicrohttpd's own (GnuTLS inside the Debian build).
#
# Generated sources join CORE_OBJ, not GEN_SRC (the Makefile's rule for
# $(GEN_SRC) embeds the SQLite migrations into every file it names):
#   pg_migrations  src/store/migrations/pg/*.sql, as SQLite's are embedded
#   web_assets     the dashboard's files (web/*), served by src/server/web.c at
#                  / and /ui/<file>; embedded as they are (no bundler, no npm),
#                  their list kept in $(B)/gen/web_files.txt and rewritten
#                  only when it changes, so adding a file rebuilds the table.

# mk/*.mk is included before the Makefile's `all`; keep it the default goal.
.DEFAULT_GOAL := all

PKGS   += libpq
CFLAGS += $(shell pkg-config --cflags libxml-2.0 2>/dev/null)
LDLIBS += $(shell pkg-config --libs libxml-2.0 libcurl 2>/dev/null) -lcrypto

PG_MIGRATIONS  = $(sort $(wildcard src/store/migrations/pg/*.sql))
CORE_OBJ      += $(B)/gen/pg_migrations.o

$(B)/gen/pg_migrations.c: $(PG_MIGRATIONS) src/store/migrations/pg scripts/embed.sh
	@mkdir -p $(@D)
	scripts/embed.sh pg_migrations $(PG_MIGRATIONS) > $@

WEB_FILES  = $(sort $(wildcard web/*.html web/*.css web/*.js web/*.svg))
CORE_OBJ  += $(B)/gen/web_assets.o

$(B)/gen/web_files.txt: FORCE_WEB_LIST
	@mkdir -p $(@D)
	@echo '$(WEB_FILES)' | cmp -s - $@ || echo '$(WEB_FILES)' > $@

.PHONY: FORCE_WEB_LIST
FORCE_WEB_LIST:

$(B)/gen/web_assets.c: $(WEB_FILES) $(B)/gen/web_files.txt scripts/embed.sh
	@mkdir -p $(@D)
	scripts/embed.sh web_assets $(WEB_FILES) > $@
