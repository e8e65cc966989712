/*
 * version: the release of taskmill this tree builds, for `taskmill
 * --version`, the server's build_info metric and the pkg-config file
 * (mk/client.mk reads the number from here). One line to change at a
 * release; the library's soname moves only with its ABI.
 */
#ifndef TASKMILL_VERSION_H
#define TASKMILL_VERSION_H

#define TASKMILL_VERSION "0.1.0"

#endif
