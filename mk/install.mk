# install.mk: `make install` (and `uninstall`) under PREFIX (default
# /usr/local), with DESTDIR for packaging: the taskmill binary, the client
# library (static, shared with its soname link), its header and a
# pkg-config file whose Libs carry a runtime path to the installed library,
# so a program linked as docs/cli.md shows runs without ldconfig or
# LD_LIBRARY_PATH whatever the PREFIX.
#
#   make install PREFIX=$HOME/.local     then $HOME/.local/bin/taskmill
#   make install-files ...               the same without building first
#                                        (what tests/cli/test_install.c runs)

.DEFAULT_GOAL := all

PREFIX     ?= /usr/local
DESTDIR    ?=
BINDIR     ?= $(PREFIX)/bin
LIBDIR     ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
PCDIR      ?= $(LIBDIR)/pkgconfig

.PHONY: install install-files uninstall
install: all
	$(MAKE) --no-print-directory install-files

install-files:
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(PCDIR)
	install -m 755 $(B)/taskmill $(DESTDIR)$(BINDIR)/taskmill
	install -m 644 $(B)/libtaskmill.a $(DESTDIR)$(LIBDIR)/libtaskmill.a
	install -m 755 $(B)/libtaskmill.so.$(CLIENT_SOVERSION) $(DESTDIR)$(LIBDIR)/libtaskmill.so.$(CLIENT_SOVERSION)
	ln -sf libtaskmill.so.$(CLIENT_SOVERSION) $(DESTDIR)$(LIBDIR)/libtaskmill.so
	install -m 644 include/taskmill.h $(DESTDIR)$(INCLUDEDIR)/taskmill.h
	printf '%s\n' 'prefix=$(PREFIX)' 'includedir=$(INCLUDEDIR)' 'libdir=$(LIBDIR)' '' \
	  'Name: taskmill' 'Description: C client library for the taskmill task server' \
	  'Version: $(TM_VERSION)' 'Requires: jansson' 'Requires.private: libcurl' \
	  'Cflags: -I$${includedir}' 'Libs: -L$${libdir} -Wl,-rpath,$${libdir} -ltaskmill' \
	  'Libs.private: -lpthread' > $(DESTDIR)$(PCDIR)/taskmill.pc

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/taskmill $(DESTDIR)$(LIBDIR)/libtaskmill.a \
	  $(DESTDIR)$(LIBDIR)/libtaskmill.so $(DESTDIR)$(LIBDIR)/libtaskmill.so.$(CLIENT_SOVERSION) \
	  $(DESTDIR)$(INCLUDEDIR)/taskmill.h $(DESTDIR)$(PCDIR)/taskmill.pc
