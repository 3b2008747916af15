/* wksp/shmem.h: named and anonymous shared-memory regions.
 *
 * A named region is a file <dir>/<name>, where <dir> is $WKSP_SHMEM_DIR if
 * set, else /dev/shm for normal pages; huge (2 MiB) and gigantic (1 GiB)
 * pages need a hugetlbfs mount of that page size (found in /proc/mounts, or
 * named by $WKSP_SHMEM_HUGE_DIR / $WKSP_SHMEM_GIGANTIC_DIR).  Any process on
 * the host may join a region by name.  Names follow FORMAT.md section 1.2:
 * 1..39 bytes of [A-Za-z0-9_.-], the first a letter or digit.
 *
 * Joins are reference counted per process: joining a name that this process
 * has already joined returns the same mapping and bumps its count; the
 * mapping goes away at the last leave.  Every mapping starts at an address
 * aligned to at least its page size (and never less than 4096), so alignments
 * up to the page size hold in every process; larger alignments are honoured
 * relative to the region start (global addresses) but not as absolute
 * virtual addresses.
 *
 * Thread safety: all calls are thread-safe (a process-wide mutex guards the
 * join table).  Process safety: create is exclusive (O_EXCL); delete only
 * unlinks the name, mappings that exist stay valid until they are left.
 * Errors: every call returns WKSP_SUCCESS or a WKSP_ERR_* code and records a
 * message (wksp_errmsg()); a failed call changes nothing. */
#ifndef WKSP_SHMEM_H
#define WKSP_SHMEM_H

#include <stddef.h>
#include <stdint.h>

#include "wksp/error.h"

#ifdef __cplusplus
extern "C" {
#endif

#define WKSP_NAME_MAX 40 /* bytes of a name including its NUL */

typedef enum {
  WKSP_PAGE_NORMAL = 0,  /* 4 KiB, always available */
  WKSP_PAGE_HUGE = 1,    /* 2 MiB, needs a hugetlbfs mount */
  WKSP_PAGE_GIGANTIC = 2 /* 1 GiB, needs a hugetlbfs mount */
} wksp_page_t;

/* Bytes of one page of the given kind (4096, 2^21, 2^30); 0 if unknown. */
WKSP_API uint64_t wksp_page_sz(wksp_page_t page);

/* Checks a region / workspace name.  WKSP_SUCCESS, or WKSP_ERR_INVAL with a
 * message saying what is wrong (empty, too long, which byte is bad). */
WKSP_API int wksp_name_check(const char *name);

/* What a region is (wksp_shmem_stat, wksp_shmem_list). */
typedef struct {
  char name[WKSP_NAME_MAX];
  uint64_t sz;       /* bytes */
  wksp_page_t page;  /* page kind */
  uint32_t mode;     /* permission bits */
} wksp_shmem_info_t;

/* Creates region `name` of `sz` bytes (a positive multiple of the page size)
 * with permission bits `mode` applied exactly (umask not applied, umask not
 * changed).  Never replaces an existing region: WKSP_ERR_EXIST.  Other
 * errors: INVAL (name, size, page, mode), UNSUP (no hugetlbfs mount for the
 * page size), FAIL (OS error with errno, e.g. ENOSPC).  On failure nothing
 * is left behind. */
WKSP_API int wksp_shmem_create(const char *name, uint64_t sz, wksp_page_t page, uint32_t mode);

/* Removes the name (existing mappings stay valid).  NOENT if there is none. */
WKSP_API int wksp_shmem_unlink(const char *name);

/* Describes region `name`.  NOENT if there is none. */
WKSP_API int wksp_shmem_stat(const char *name, wksp_shmem_info_t *info);

/* Calls fn once per region (valid names only, every page kind), in name
 * order.  A non-zero return from fn stops the walk and is returned. */
WKSP_API int wksp_shmem_list(int (*fn)(const wksp_shmem_info_t *info, void *ctx), void *ctx);

/* Joins region `name`, read-write if `writable`, else read-only (writes to a
 * read-only mapping fault).  *mem gets the local address, *sz (optional) the
 * size.  Joining again returns the same mapping (a writable join of a region
 * joined read-only only so far is PERM).  Errors: INVAL, NOENT, PERM, FAIL. */
WKSP_API int wksp_shmem_join(const char *name, int writable, void **mem, uint64_t *sz);

/* Leaves a join made by wksp_shmem_join (mem is the address it returned).
 * INVAL if mem is not a joined region. */
WKSP_API int wksp_shmem_leave(void *mem);

/* The name of the region joined at mem (NULL if none or anonymous). */
WKSP_API const char *wksp_shmem_name(const void *mem);

/* Anonymous (process-private) region of `sz` bytes with the given page
 * kind, page-size aligned, zero-filled.  Shared with children forked after
 * the call.  Errors: INVAL, UNSUP, FAIL (mmap errno). */
WKSP_API int wksp_shmem_anon_new(uint64_t sz, wksp_page_t page, void **mem);

/* Frees an anonymous region.  INVAL if mem did not come from anon_new. */
WKSP_API int wksp_shmem_anon_delete(void *mem);

#ifdef __cplusplus
}
#endif

#endif
