# web.mk: the dashboard (web/*, issue 10), embedded into the binary as
# `web_assets` (src/common/embedded.h) and served by src/server/web.c at /
# and /ui/<file>. The files are embedded as they are: no bundler, no npm,
# so `make` on a fresh machine needs nothing beyond the C toolchain.
#
# The list of files is kept in $(B)/gen/web_files.txt, rewritten only when
# it changes, so adding or removing a file rebuilds the table too.

.DEFAULT_GOAL := all

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
