# pg.mk: the PostgreSQL backend (src/store/store_pg*.c) on libpq (Debian
# libpq-dev), and its migrations, embedded like SQLite's as `pg_migrations`.
#
# The backend is picked at run time by a postgres:// or postgresql:// store
# URL; the conformance suite runs against a throwaway cluster with
#   TASKMILL_TEST_STORE='postgres://taskmill@/DB?host=DIR' build/asan/tests/store/test_store
# (scripts/pg.sh start DIR makes one).
#
# The generated file joins CORE_OBJ, not GEN_SRC: the Makefile's rule for
# $(GEN_SRC) embeds the SQLite migrations into every file it names.

.DEFAULT_GOAL := all

PKGS          += libpq
PG_MIGRATIONS  = $(sort $(wildcard src/store/migrations/pg/*.sql))
CORE_OBJ      += $(B)/gen/pg_migrations.o

$(B)/gen/pg_migrations.c: $(PG_MIGRATIONS) scripts/embed.sh
	@mkdir -p $(@D)
	scripts/embed.sh pg_migrations $(PG_MIGRATIONS) > $@
