/* wksp/shmem.h: named and anonymous shared-memory regions.
 *
 * A named region is a regular file <dir>/<name>.  <dir> depends on the page
 * kind:
 *   normal (4 KiB)     $WKSP_SHMEM_DIR if set and not empty, else /dev/shm;
 *   huge (2 MiB)       $WKSP_SHMEM_HUGE_DIR, else the first hugetlbfs mount
 *                      with pagesize=2M in /proc/mounts (a hugetlbfs mount
 *                      without a pagesize option has the kernel's default
 *                      huge page size, Hugepagesize in /proc/meminfo);
 *   gigantic (1 GiB)   $WKSP_SHMEM_GIGANTIC_DIR, else a pagesize=1G mount.
 * A directory named by $WKSP_SHMEM_HUGE_DIR / $WKSP_SHMEM_GIGANTIC_DIR must
 * be a hugetlbfs mount of that page size.  The environment and the mounts
 * are read at every call (nothing is cached).  Any process on the host with
 * the file permissions may join a region by name.  A name is looked up in
 * the directories of every page kind, normal first, and is unique across
 * them (create refuses a name that exists in any of them).
 *
 * Names follow docs/FORMAT.md section 1.2: 1..39 bytes of [A-Za-z0-9_.-], the
 * first a letter or digit (at most 40 bytes of a name are ever read).
 *
 * Joins are reference counted per process and per mode: joining a name
 * this process has already joined in the same mode (read-write or
 * read-only) returns the same mapping and bumps its count; the mapping goes
 * away at the last leave.  A read-only join is always its own PROT_READ
 * mapping (at another address than a read-write join of the same region),
 * so that read-only really means it.  A region that was unlinked and
 * created again under the same name is a new region and gets a new
 * mapping.  One process holds at most 1024 mappings (joins of distinct
 * regions or modes plus anonymous regions); beyond that join and anon_new
 * fail with FAIL.
 *
 * Alignment: every mapping starts at an address aligned to its page size
 * (4096 for normal pages, 2 MiB huge, 1 GiB gigantic; never less than the
 * system page size).  So an allocation aligned to at most the page size
 * relative to the region start (a global address) is aligned to the same
 * amount as a virtual address in every process.  A larger alignment holds
 * for global addresses only: the virtual address is then only page-size
 * aligned, and may differ in alignment between processes.
 *
 * Thread safety: every call is thread-safe (a process-wide mutex guards
 * the join table; pthread_atfork keeps it usable in a forked child).
 * Fork: a child inherits the parent's mappings (MAP_SHARED, so both see
 * the same bytes) and its join table, counts included; the child leaves
 * them independently of the parent.  Process safety: create is atomic and
 * exclusive (the file is made unnamed with O_TMPFILE, sized and chmod-ed,
 * then linked under its name, which fails if the name exists), so no
 * process ever sees a half-made region and a process killed inside create
 * leaves nothing.  (Where the file system has no O_TMPFILE or /proc is not
 * mounted, the file is made under a hidden temporary name, ".NAME.wksp-new.
 * PID.N", which is not a valid region name, and renamed into place without
 * replacing anything; a process killed before the rename leaves that hidden
 * file, never a half-made region under the name.)  Unlink only removes the
 * name; mappings that exist stay valid until they are left.
 *
 * Errors: every call returns WKSP_SUCCESS or a WKSP_ERR_* code and records
 * a message (wksp_errmsg()) naming the call, the name or path and the
 * cause; a failed call changes nothing (no file, mapping or count is left
 * behind). */
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

/* Bytes of one page of the given kind (4096, 2^21, 2^30); 0 for a value
 * that is not a wksp_page_t.  Pure, never fails. */
WKSP_API uint64_t wksp_page_sz(wksp_page_t page);

/* Checks a region / workspace name against docs/FORMAT.md section 1.2, reading
 * at most WKSP_NAME_MAX bytes (so a 40-byte buffer without a NUL is safe).
 * WKSP_SUCCESS, or WKSP_ERR_INVAL with a message saying what is wrong: NULL,
 * empty, too long, or which byte (index and hex value) breaks the rule. */
WKSP_API int wksp_name_check(const char *name);

/* What a region is (wksp_shmem_stat, wksp_shmem_list). */
typedef struct {
  char name[WKSP_NAME_MAX];
  uint64_t sz;       /* bytes */
  wksp_page_t page;  /* page kind */
  uint32_t mode;     /* permission bits */
  int64_t mtime;     /* the file's modification time, ns since the epoch: set at
                        create; a write through a mapping updates it only when
                        it faults a page in, so it may be older than the last
                        write */
  int64_t btime;     /* the file's creation (birth) time, ns since the epoch; 0
                        when the file system does not record one */
} wksp_shmem_info_t;

/* Creates region `name` of `sz` bytes, zero-filled, with permission bits
 * `mode` (0..0777) applied exactly: fchmod, the umask is neither applied
 * nor changed.  sz must be a positive multiple of the page size and at
 * most 2^56.  The memory is allocated now (posix_fallocate; on hugetlbfs
 * ftruncate plus fallocate(2) reserving the huge pages), so a full /dev/shm
 * or a shortage of huge pages is an error here, not a SIGBUS later.
 * Never replaces an existing region.
 * Errors: INVAL (bad name, size not a positive multiple of the page size --
 * the message gives the page size --, unknown page kind, mode bits outside
 * 0777), EXIST (the name exists in the directory of any page kind), UNSUP
 * (huge/gigantic pages with no hugetlbfs mount of that size: the message
 * says how to configure one), PERM (no permission to create in the
 * directory), FAIL (other OS error, errno in the message and wksp_errno():
 * ENOSPC when the memory is not there, ENOENT when the directory does not
 * exist).  On every failure nothing is left behind. */
WKSP_API int wksp_shmem_create(const char *name, uint64_t sz, wksp_page_t page, uint32_t mode);

/* Removes the name; existing mappings (in any process) stay valid and the
 * memory is freed at the last unmap.  Errors: INVAL (name), NOENT (no such
 * region), PERM (directory permissions), FAIL. */
WKSP_API int wksp_shmem_unlink(const char *name);

/* Describes region `name` (size, page kind, permission bits, times).
 * Needs no read permission on the region.  Errors: INVAL (name, info
 * NULL), NOENT (no such region, or a non-regular file of that name), FAIL. */
WKSP_API int wksp_shmem_stat(const char *name, wksp_shmem_info_t *info);

/* Calls fn once per region: every regular file with a valid name in the
 * directory of every configured page kind, sorted by name (then page
 * kind).  The directories are read first, then fn is called with no lock
 * held (fn may call any shmem function).  A non-zero return from fn stops
 * the walk and is returned as is.  Errors: INVAL (fn NULL), FAIL (a
 * directory cannot be read, e.g. $WKSP_SHMEM_DIR does not exist), NOMEM. */
WKSP_API int wksp_shmem_list(int (*fn)(const wksp_shmem_info_t *info, void *ctx), void *ctx);

/* A process that maps a named region (wksp_shmem_maps). */
typedef struct {
  char name[WKSP_NAME_MAX]; /* the region */
  wksp_page_t page;         /* its page kind */
  uint32_t pid;             /* the process (in this process's PID namespace) */
  int writable;             /* 1 if one of its mappings of the region is shared and
                               writable, 0 if all are read-only or private */
} wksp_shmem_map_t;

/* Which processes map which named regions, best effort: lists the regions
 * (as wksp_shmem_list), then reads /proc/[pid]/maps of every process and
 * matches each mapping to a region file by device and inode, so a region
 * unlinked and created again under the same name is not confused with the
 * old one, and mappings of an unlinked region are not reported.  Calls fn
 * once per (region, process) pair, sorted by region as wksp_shmem_list,
 * then by pid; the calling process is included like any other.  A process
 * that only holds the file open without mapping it is not seen.  The scan
 * is a snapshot: processes may map or unmap meanwhile.  fn is called with
 * no lock held; a non-zero return stops the walk and is returned as is.
 * *unreadable (optional) gets the number of processes whose maps could not
 * be read (another user's processes, without privileges): when it is not 0
 * the answer may be incomplete.  Processes hidden by /proc's hidepid
 * option are not seen at all (and not counted).  Reads only /proc and the
 * directories; changes nothing.
 * Errors: INVAL (fn NULL), FAIL (/proc cannot be read, e.g. not mounted,
 * or a directory cannot be read), NOMEM.  *unreadable is 0 on failure. */
WKSP_API int wksp_shmem_maps(int (*fn)(const wksp_shmem_map_t *map, void *ctx), void *ctx,
                             uint64_t *unreadable);

/* Joins region `name`, read-write if `writable` is non-zero, else read-only
 * (PROT_READ: writes through it fault).  *mem gets the local address,
 * aligned to the region's page size, *sz (optional) the size.  Joining
 * again in the same mode returns the same mapping and counts one more join
 * (see the top of this file).  *mem and *sz are written only on success.
 * Each region joined (not each join) keeps one descriptor of its file open
 * (O_CLOEXEC) until its last leave: checkpoints and restores move v2 data
 * through it instead of through a mapping the process has not touched yet
 * (faster for a fresh process on 4 KiB pages; checkpt.h).
 * Errors: INVAL (bad name, mem NULL), NOENT (no such region), PERM (the
 * file's permissions forbid this mode), CORRUPT (the file's size is not a
 * positive multiple of its page size: not a region), UNSUP (hugetlbfs of a
 * page size wksp does not know), FAIL (mmap failed, e.g. ENOMEM when huge
 * pages run out; or 1024 mappings held already). */
WKSP_API int wksp_shmem_join(const char *name, int writable, void **mem, uint64_t *sz);

/* Leaves one join made by wksp_shmem_join (mem is the address it
 * returned); the mapping is removed, and the region's descriptor closed,
 * at the last leave.  Errors: INVAL if
 * mem is not the start of a region joined by this process (the message
 * says if it is inside one, or an anonymous region); nothing changes. */
WKSP_API int wksp_shmem_leave(void *mem);

/* The name of the joined region containing mem (any byte inside it), or
 * NULL if mem is in no joined region or in an anonymous one.  Records no
 * error.  The string lives in the join table: it stays valid until that
 * region's last leave. */
WKSP_API const char *wksp_shmem_name(const void *mem);

/* Anonymous region of `sz` bytes (a positive multiple of the page size, at
 * most 2^56) of the given page kind: private to this process and its
 * children forked after the call, which share its bytes (MAP_SHARED).
 * Page-size aligned and zero-filled; *mem is written only on success.
 * Huge and gigantic pages need reserved huge pages
 * (/sys/kernel/mm/hugepages/) but no mount.  Errors: INVAL (size, page
 * kind, mem NULL), UNSUP (the kernel offers no pages of that size), FAIL
 * (mmap failed, e.g. ENOMEM: no free huge pages; or 1024 mappings held). */
WKSP_API int wksp_shmem_anon_new(uint64_t sz, wksp_page_t page, void **mem);

/* Unmaps an anonymous region (in this process; forked children keep their
 * mapping).  Errors: INVAL if mem is not the start of a live region from
 * wksp_shmem_anon_new (nothing changes). */
WKSP_API int wksp_shmem_anon_delete(void *mem);

#ifdef __cplusplus
}
#endif

#endif
