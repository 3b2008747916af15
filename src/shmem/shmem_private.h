/* Internal interface of the shmem layer, used by the workspace layer
 * (src/wksp/) and by tests.  Not part of the public API. */
#ifndef WKSP_SHMEM_PRIVATE_H
#define WKSP_SHMEM_PRIVATE_H

#include <limits.h>
#include <stdint.h>
#include <stdio.h>

#include "shmem/name_private.h"
#include <wksp/shmem.h>

/* Fills in a new region before it gets its name: mem is a read-write
 * mapping of all sz bytes (zero-filled, aligned to the page size), valid
 * during the call only.  Returns WKSP_SUCCESS, or an error code with its
 * message recorded, which makes the create fail. */
typedef int (*wksp_private_shmem_init_fn)(void *mem, uint64_t sz, void *ctx);

/* wksp_shmem_create with an initializer: the region is created unnamed,
 * sized and given its mode, then init(mem, sz, ctx) runs on a mapping of
 * it (init NULL: nothing), and only if that succeeds is the region
 * published under its name (atomically, failing with EXIST if the name was
 * taken meanwhile).  So a name only ever holds a complete region: another
 * process never sees one half initialized, and a creator that dies (even by
 * SIGKILL) before the publication leaves the name free.  Errors: those of
 * wksp_shmem_create, plus init's (the mapping failing is FAIL); on any
 * failure nothing is left behind.  The one exception, file systems without
 * O_TMPFILE (or without /proc to link the unnamed file): the region is
 * built under a hidden name ".NAME.wksp-new.PID.N" in the same directory
 * (not a valid region name: listings and joins ignore it) and renamed into
 * place; a creator killed before that leaves the hidden file, which holds
 * memory until it is removed by hand. */
int wksp_private_shmem_create(const char *name, uint64_t sz, wksp_page_t page, uint32_t mode,
                              wksp_private_shmem_init_fn init, void *ctx);

/* Test seam: non-zero makes creates take the route of file systems without
 * O_TMPFILE (the hidden temporary name). */
extern int wksp_private_shmem_test_no_tmpfile;

/* What this process has mapped at some address (see wksp_private_shmem_find). */
typedef struct {
  void *mem;              /* first byte of the mapping (the address join / anon_new returned) */
  uint64_t sz;            /* bytes mapped */
  wksp_page_t page;       /* page kind */
  int writable;           /* 1 read-write, 0 read-only */
  int anon;               /* 1 anonymous region (name is "") */
  char name[WKSP_NAME_MAX];
} wksp_private_shmem_region_t;

/* Is addr inside a region this process may write?  1 if addr lies in a
 * read-write join or an anonymous region, 0 if it lies in a read-only join,
 * -1 if it lies in no region known to this process (e.g. memory the caller
 * mapped itself).  Records no error.  Lock-free (a sequence-locked scan of
 * the join table, readers never block) and cheap enough to call on every
 * allocator operation; thread-safe. */
int wksp_private_shmem_writable(const void *addr);

/* Describes the region containing addr (any byte inside it).  SUCCESS, or
 * INVAL when addr is in no joined or anonymous region (or out is NULL).
 * Records no error: callers say what they expected.  Thread-safe (takes
 * the join-table mutex). */
int wksp_private_shmem_find(const void *addr, wksp_private_shmem_region_t *out);

/* The file behind the joined region containing addr, for moving its bytes
 * with file I/O instead of through this process's mapping: *fd gets a new
 * descriptor of it (O_CLOEXEC, opened in the join's mode; the caller
 * closes it) and *off the file offset of addr.  A fresh process pays one
 * page fault per 4 KiB page it touches in a mapping, which costs more
 * than the copy itself on some machines (bench/FINDINGS.md, "CLI"), while
 * read(2) and write(2) on the file do not fault.  The mapping and the file
 * show the same bytes (one page cache).
 *
 * SUCCESS, or INVAL (*fd = -1) when addr is in no joined region of this
 * process, in an anonymous one, in one on huge pages (hugetlbfs files
 * cannot be written with write(2)), when the descriptor cannot be
 * duplicated (EMFILE), or when it no longer names the region's file
 * (device and inode recorded at the join: a forked child may have closed
 * it and opened something else under its number).  Records no error: callers fall back to the
 * mapping.  The region's own descriptor is kept open while it is joined
 * (one per joined region).  Thread-safe (takes the join-table mutex). */
int wksp_private_shmem_file(const void *addr, int *fd, uint64_t *off);

/* A region as listed, with the identity of its file (what /proc/[pid]/maps
 * shows of a mapping: device major:minor and inode). */
typedef struct {
  wksp_shmem_info_t info;
  uint32_t dev_major, dev_minor;
  uint64_t ino;
} wksp_private_shmem_listed_t;

/* Every region of every page kind's directory, sorted as wksp_shmem_list
 * reports them, into a malloc'd array (*out = NULL when *cnt == 0; caller
 * free()s).  Errors as wksp_shmem_list (FAIL, NOMEM); then *out = NULL and
 * *cnt = 0. */
int wksp_private_shmem_regions(wksp_private_shmem_listed_t **out, size_t *cnt);

/* The directory holding regions of page kind `page`, written to
 * dir[dir_sz]: normal pages $WKSP_SHMEM_DIR (when set and not empty) else
 * /dev/shm; huge and gigantic pages $WKSP_SHMEM_HUGE_DIR /
 * $WKSP_SHMEM_GIGANTIC_DIR (which must be a hugetlbfs mount of that page
 * size) else the first hugetlbfs mount of that page size in /proc/mounts.
 * Errors: INVAL (bad page kind, dir_sz too small), UNSUP (no such mount,
 * with a message saying how to configure one). */
int wksp_private_shmem_dir(wksp_page_t page, char *dir, size_t dir_sz);

/* As wksp_private_shmem_dir but records no error (for probing every page
 * kind while looking a name up). */
int wksp_private_shmem_dir_quiet(wksp_page_t page, char *dir, size_t dir_sz);

/* The directory of every page kind at once (dirs[page]; "" for a kind with
 * none configured), reading /proc/mounts at most once.  Records no error. */
void wksp_private_shmem_dirs(char dirs[3][PATH_MAX]);

/* Scans a /proc/mounts-format stream for the first hugetlbfs mount whose
 * page size is page_sz (a mount without a pagesize= option has
 * default_sz, the kernel's default huge page size; 0: read it from
 * /proc/meminfo if such a mount is met).  Writes its unescaped
 * mount point to dir[dir_sz] and returns 1; returns 0 when there is none
 * (or the mount point does not fit).  Records no error. */
int wksp_private_shmem_mounts_find(FILE *mounts, uint64_t page_sz, uint64_t default_sz, char *dir,
                                   size_t dir_sz);

#endif
