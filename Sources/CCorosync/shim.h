// The Corosync client libraries (Debian: libcpg-dev, libvotequorum-dev, libcmap-dev, libquorum-dev).
#ifndef CLEVERVM_CCOROSYNC_SHIM_H
#define CLEVERVM_CCOROSYNC_SHIM_H

#include <stdint.h>
#include <stddef.h>
#include <corosync/corotypes.h>
#include <corosync/cpg.h>
#include <corosync/votequorum.h>
#include <corosync/cmap.h>
#include <corosync/quorum.h>

#endif
