/* Named and anonymous shared-memory regions (wksp/shmem.h).
 *
 * A named region is a regular file in the directory of its page kind
 * (shmem_dir.c).  It is created under no name (O_TMPFILE), sized, given its
 * mode, filled in by the creator's init callback and only then linked under
 * its name, so no other process ever sees a half-made region and a crash
 * mid-create leaves nothing behind.  Without O_TMPFILE (or /proc to link it)
 * the same is done under a hidden temporary name that is renamed into place.
 *
 * Every mapping this process holds (named joins and anonymous regions) is a
 * slot of one static table.  A mutex serializes changes; the address range
 * and writability of each slot are also published under a sequence lock so
 * that wksp_private_shmem_writable(), called by the allocator on every
 * operation, never blocks or takes a lock.  The table is static so that the
 * name pointer wksp_shmem_name() returns always points at valid memory.
 * About 780 lines in one file: the create / join / leave / unlink paths all
 * work on that one static table under its mutex and sequence lock. */
#include "shmem_private.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/magic.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "util/err.h"
#include "util/esc.h"

/* Regions above this size are refused: it keeps size + alignment and off_t
 * arithmetic far from overflow and is beyond any real machine. */
#define REGION_SZ_MAX (UINT64_C(1) << 56)

/* ---- names and page kinds ---------------------------------------------- */

uint64_t wksp_page_sz(wksp_page_t page) {
  switch (page) {
  case WKSP_PAGE_NORMAL: return UINT64_C(1) << 12;
  case WKSP_PAGE_HUGE: return UINT64_C(1) << 21;
  case WKSP_PAGE_GIGANTIC: return UINT64_C(1) << 30;
  default: return 0;
  }
}

static const char *page_label(wksp_page_t page) {
  switch (page) {
  case WKSP_PAGE_NORMAL: return "normal (4 KiB)";
  case WKSP_PAGE_HUGE: return "huge (2 MiB)";
  case WKSP_PAGE_GIGANTIC: return "gigantic (1 GiB)";
  default: return "unknown";
  }
}

static int is_alnum(unsigned char c) {
  return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

/* The first `max` bytes of s, escaped, for error messages (a bad name may
 * hold any byte). */
static const char *printable(const char *s, size_t max, char *out, size_t out_sz) {
  wksp_private_esc(out, out_sz, s, strnlen(s, max), WKSP_ESC_C);
  return out;
}

/* Index of the first byte (of the first len) that breaks the name rule, or
 * len if none; *len gets strnlen(name, WKSP_NAME_MAX). */
static size_t name_scan(const char *name, size_t *len) {
  *len = strnlen(name, WKSP_NAME_MAX);
  for (size_t i = 0; i < *len; i++) {
    unsigned char c = (unsigned char)name[i];
    if (!is_alnum(c) && (i == 0 || (c != '_' && c != '-' && c != '.'))) return i;
  }
  return *len;
}

size_t wksp_private_name_len(const char *name) {
  size_t len;
  return name_scan(name, &len) == len && len >= 1 && len < WKSP_NAME_MAX ? len : 0;
}

int wksp_name_check(const char *name) {
  if (!name) return wksp_err(WKSP_ERR_INVAL, 0, "name is NULL");
  size_t len, bad = name_scan(name, &len);
  char show[4 * WKSP_NAME_MAX + 8];
  if (!len) return wksp_err(WKSP_ERR_INVAL, 0, "name is empty (it needs 1 to 39 bytes)");
  if (bad < len && bad == 0)
    return wksp_err(WKSP_ERR_INVAL, 0,
                    "name \"%s\": first byte is 0x%02x, it must be a letter or a digit",
                    printable(name, len, show, sizeof show), (unsigned char)name[0]);
  if (bad < len)
    return wksp_err(WKSP_ERR_INVAL, 0,
                    "name \"%s\": byte %zu is 0x%02x, only letters, digits, '_', '-' and '.' "
                    "are allowed",
                    printable(name, len, show, sizeof show), bad, (unsigned char)name[bad]);
  if (len == WKSP_NAME_MAX)
    return wksp_err(WKSP_ERR_INVAL, 0, "name \"%s...\" is too long: more than %d bytes",
                    printable(name, WKSP_NAME_MAX - 1, show, sizeof show), WKSP_NAME_MAX - 1);
  return WKSP_SUCCESS;
}

/* ---- the mapping table ------------------------------------------------- */

enum { REGION_MAX = 1024 }; /* regions one process may hold at once */

typedef struct {
  /* Published under table_seq for lock-free readers; hi == 0: free slot. */
  _Atomic uintptr_t lo, hi;
  _Atomic int writable;
  /* Guarded by table_mu. */
  int anon;
  char name[WKSP_NAME_MAX];
  dev_t dev; /* identity of the file: a name may be unlinked and re-created */
  ino_t ino;
  wksp_page_t page;
  uint64_t refcnt;
  int fd; /* joins: the region file, kept open for wksp_private_shmem_file; else -1 */
} region_t;

static region_t table[REGION_MAX];
static _Atomic size_t table_hwm;  /* slots [0, hwm) may be in use */
static _Atomic uint32_t table_seq; /* odd while a slot's published fields change */
static pthread_mutex_t table_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

/* A fork while another thread holds the mutex would leave it locked forever
 * in the child: hold it across fork. */
static void atfork_prepare(void) { pthread_mutex_lock(&table_mu); }
static void atfork_release(void) { pthread_mutex_unlock(&table_mu); }
static void table_init(void) { pthread_atfork(atfork_prepare, atfork_release, atfork_release); }

static void table_lock(void) {
  pthread_once(&table_once, table_init);
  pthread_mutex_lock(&table_mu);
}

static void table_unlock(void) { pthread_mutex_unlock(&table_mu); }

/* Sequence-lock writer side (table_mu held): readers that overlap a change
 * see an odd or changed sequence and retry. */
static void publish_begin(void) {
  uint32_t s = atomic_load_explicit(&table_seq, memory_order_relaxed);
  atomic_store_explicit(&table_seq, s + 1, memory_order_relaxed);
  atomic_thread_fence(memory_order_release);
}

static void publish_end(void) {
  uint32_t s = atomic_load_explicit(&table_seq, memory_order_relaxed);
  atomic_store_explicit(&table_seq, s + 1, memory_order_release);
}

static uintptr_t slot_lo(const region_t *r) {
  return atomic_load_explicit(&r->lo, memory_order_relaxed);
}
static uintptr_t slot_hi(const region_t *r) {
  return atomic_load_explicit(&r->hi, memory_order_relaxed);
}

/* Table_mu held.  A free slot, or NULL when all REGION_MAX are in use. */
static region_t *slot_alloc(void) {
  for (size_t i = 0; i < REGION_MAX; i++) {
    if (slot_hi(&table[i])) continue;
    if (i >= atomic_load_explicit(&table_hwm, memory_order_relaxed))
      atomic_store_explicit(&table_hwm, i + 1, memory_order_release);
    table[i].fd = -1;
    return &table[i];
  }
  return NULL;
}

static void slot_publish(region_t *r, void *mem, uint64_t sz, int writable) {
  publish_begin();
  atomic_store_explicit(&r->lo, (uintptr_t)mem, memory_order_relaxed);
  atomic_store_explicit(&r->writable, writable, memory_order_relaxed);
  atomic_store_explicit(&r->hi, (uintptr_t)mem + sz, memory_order_relaxed);
  publish_end();
}

static void slot_free(region_t *r) {
  publish_begin();
  atomic_store_explicit(&r->hi, 0, memory_order_relaxed);
  atomic_store_explicit(&r->lo, 0, memory_order_relaxed);
  publish_end();
  r->name[0] = 0;
  r->refcnt = 0;
  if (r->fd >= 0) close(r->fd);
  r->fd = -1;
}

/* Table_mu held.  The slot whose mapping contains addr. */
static region_t *slot_containing(uintptr_t addr) {
  size_t n = atomic_load_explicit(&table_hwm, memory_order_relaxed);
  for (size_t i = 0; i < n; i++)
    if (addr >= slot_lo(&table[i]) && addr < slot_hi(&table[i])) return &table[i];
  return NULL;
}

int wksp_private_shmem_writable(const void *addr) {
  uintptr_t a = (uintptr_t)addr;
  for (unsigned spins = 0;; spins++) {
    uint32_t s0 = atomic_load_explicit(&table_seq, memory_order_acquire);
    if (s0 & 1) { /* a change is in flight: a few stores, unless its thread got preempted */
      if (spins > 64) sched_yield();
      continue;
    }
    int res = -1;
    size_t n = atomic_load_explicit(&table_hwm, memory_order_acquire);
    for (size_t i = 0; i < n; i++) {
      if (a >= slot_lo(&table[i]) && a < slot_hi(&table[i])) {
        res = atomic_load_explicit(&table[i].writable, memory_order_relaxed);
        break;
      }
    }
    atomic_thread_fence(memory_order_acquire);
    if (atomic_load_explicit(&table_seq, memory_order_relaxed) == s0) return res;
  }
}

static void slot_describe(const region_t *r, wksp_private_shmem_region_t *out) {
  out->mem = (void *)slot_lo(r);
  out->sz = slot_hi(r) - slot_lo(r);
  out->page = r->page;
  out->writable = atomic_load_explicit(&r->writable, memory_order_relaxed);
  out->anon = r->anon;
  memcpy(out->name, r->name, WKSP_NAME_MAX);
}

int wksp_private_shmem_find(const void *addr, wksp_private_shmem_region_t *out) {
  if (!out) return WKSP_ERR_INVAL;
  table_lock();
  region_t *r = slot_containing((uintptr_t)addr);
  if (r) slot_describe(r, out);
  table_unlock();
  return r ? WKSP_SUCCESS : WKSP_ERR_INVAL;
}

int wksp_private_shmem_file(const void *addr, int *fd, uint64_t *off) {
  *fd = -1;
  table_lock();
  region_t *r = slot_containing((uintptr_t)addr);
  if (r && !r->anon && r->fd >= 0 && r->page == WKSP_PAGE_NORMAL) {
    /* The descriptor may no longer be ours: a forked child that closed
     * every descriptor and opened other files.  Only the file it was. */
    struct stat st;
    int d = fcntl(r->fd, F_DUPFD_CLOEXEC, 0);
    if (d >= 0 && !fstat(d, &st) && st.st_dev == r->dev && st.st_ino == r->ino) {
      *fd = d;
      *off = (uint64_t)((uintptr_t)addr - slot_lo(r));
    } else if (d >= 0) {
      close(d);
    }
  }
  table_unlock();
  return *fd >= 0 ? WKSP_SUCCESS : WKSP_ERR_INVAL;
}

const char *wksp_shmem_name(const void *mem) {
  table_lock();
  region_t *r = slot_containing((uintptr_t)mem);
  const char *name = r && !r->anon ? r->name : NULL;
  table_unlock();
  return name;
}

/* ---- mapping at an aligned address ------------------------------------- */

/* Maps sz bytes of fd (-1: anonymous) at an address aligned to `align`:
 * reserve sz + align bytes of address space, map over the aligned part of
 * it with MAP_FIXED, and give the rest back.  Returns 0 or an errno. */
static int map_aligned(int fd, uint64_t sz, uint64_t align, int prot, int flags, void **out) {
  uint64_t sys = (uint64_t)sysconf(_SC_PAGESIZE);
  if (align < sys) align = sys;
  size_t span = (size_t)(sz + align);
  uint8_t *base = mmap(NULL, span, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (base == MAP_FAILED) return errno;
  uintptr_t a = ((uintptr_t)base + (uintptr_t)(align - 1)) & ~(uintptr_t)(align - 1);
  uint8_t *mem = (uint8_t *)a;
  if (mmap(mem, (size_t)sz, prot, MAP_SHARED | MAP_FIXED | flags, fd, 0) == MAP_FAILED) {
    int e = errno;
    munmap(base, span);
    return e;
  }
  if (mem > base) munmap(base, (size_t)(mem - base));
  if (mem + sz < base + span) munmap(mem + sz, (size_t)(base + span - (mem + sz)));
  *out = mem;
  return 0;
}

/* ---- locating named regions -------------------------------------------- */

typedef struct {
  char path[PATH_MAX];
  wksp_page_t page;
  struct stat st;
} located_t;

/* The page kind of the file system holding a file; -1 for hugetlbfs with
 * a page size wksp does not know. */
static int fs_page(const struct statfs *sf) {
  if ((uint64_t)sf->f_type != (uint64_t)HUGETLBFS_MAGIC) return WKSP_PAGE_NORMAL;
  if ((uint64_t)sf->f_bsize == wksp_page_sz(WKSP_PAGE_HUGE)) return WKSP_PAGE_HUGE;
  if ((uint64_t)sf->f_bsize == wksp_page_sz(WKSP_PAGE_GIGANTIC)) return WKSP_PAGE_GIGANTIC;
  return -1;
}

/* The distinct directories of every configured page kind; dirs[k] is ""
 * for a kind with none (or the same directory as an earlier kind). */
static void dirs_known(char dirs[3][PATH_MAX]) {
  wksp_private_shmem_dirs(dirs);
  for (int k = 0; k < 3; k++) {
    for (int j = 0; j < k; j++)
      if (dirs[k][0] && !strcmp(dirs[j], dirs[k])) dirs[k][0] = 0;
  }
}

static int path_join(char *out, const char *dir, const char *name) {
  int n = snprintf(out, PATH_MAX, "%s/%s", dir, name);
  if (n < 0 || n >= PATH_MAX)
    return wksp_err(WKSP_ERR_INVAL, 0, "path %s/%s is longer than %d bytes", dir, name, PATH_MAX - 1);
  return WKSP_SUCCESS;
}

/* Looks for region `name` in dir: 1 found (loc filled in), 0 not there,
 * or a recorded error code. */
static int locate_in(const char *who, const char *dir, const char *name, located_t *loc) {
  int rc = path_join(loc->path, dir, name);
  if (rc) return rc;
  if (lstat(loc->path, &loc->st)) {
    if (errno == ENOENT) return 0;
    return wksp_err_in(WKSP_ERR_FAIL, errno, who, "lstat %s", loc->path);
  }
  if (!S_ISREG(loc->st.st_mode))
    return wksp_err_in(WKSP_ERR_NOENT, 0, who, "%s is not a region (not a regular file)", loc->path);
  struct statfs sf;
  if (statfs(loc->path, &sf)) return wksp_err_in(WKSP_ERR_FAIL, errno, who, "statfs %s", loc->path);
  int page = fs_page(&sf);
  if (page < 0)
    return wksp_err_in(WKSP_ERR_UNSUP, 0, who, "%s is on hugetlbfs with %lu-byte pages, not 2 MiB or 1 GiB", loc->path,
                       (unsigned long)sf.f_bsize);
  loc->page = (wksp_page_t)page;
  return 1;
}

/* Finds region `name` (already checked) in the directories of every page
 * kind, in page order.  The normal directory comes first and alone: most
 * regions are there, and the huge page directories cost a read of
 * /proc/mounts.  SUCCESS, NOENT (saying where it looked), FAIL, UNSUP. */
static int locate(const char *who, const char *name, located_t *loc) {
  char dirs[3][PATH_MAX];
  if (wksp_private_shmem_dir_quiet(WKSP_PAGE_NORMAL, dirs[0], PATH_MAX)) dirs[0][0] = 0;
  int rc = dirs[0][0] ? locate_in(who, dirs[0], name, loc) : 0;
  if (rc) return rc < 0 ? rc : WKSP_SUCCESS;

  dirs_known(dirs);
  char where[3 * PATH_MAX + 8] = "";
  for (int k = 0; k < 3; k++) {
    if (!dirs[k][0]) continue;
    if (k > 0 && (rc = locate_in(who, dirs[k], name, loc))) return rc < 0 ? rc : WKSP_SUCCESS;
    size_t w = strlen(where);
    snprintf(where + w, sizeof where - w, "%s%s", w ? ", " : "", dirs[k]);
  }
  return wksp_err_in(WKSP_ERR_NOENT, 0, who, "no region named \"%s\" (looked in %s)", name, where);
}

/* Is there a file `name` in the directory of any page kind?  Records no
 * error: not finding one is what create hopes for. */
static int exists_anywhere(const char *name, char path[PATH_MAX]) {
  char dirs[3][PATH_MAX];
  dirs_known(dirs);
  struct stat st;
  for (int k = 0; k < 3; k++) {
    int n = snprintf(path, PATH_MAX, "%s/%s", dirs[k], name);
    if (dirs[k][0] && n > 0 && n < PATH_MAX && !lstat(path, &st)) return 1;
  }
  return 0;
}

/* ---- named regions ----------------------------------------------------- */

/* Gives fd its backing memory.  tmpfs (and other file systems) allocate it
 * with posix_fallocate, so that a full /dev/shm is a clean error now and
 * not a SIGBUS at first touch.  hugetlbfs cannot write, so it gets its size
 * with ftruncate and its huge pages with fallocate(2) where the kernel
 * supports that (4.3+), which likewise reports a shortage of huge pages
 * here rather than at the first join. */
static int back(const char *who, const char *dir, int fd, uint64_t sz, wksp_page_t page) {
  struct statfs sf;
  if (fstatfs(fd, &sf)) return wksp_err_in(WKSP_ERR_FAIL, errno, who, "fstatfs in %s", dir);
  int fpage = fs_page(&sf);
  if (fpage != (int)page)
    return wksp_err_in(WKSP_ERR_UNSUP, 0, who, "%s is a %s with %lu-byte blocks, not suited to %s pages", dir,
                       fpage == WKSP_PAGE_NORMAL ? "normal file system" : "hugetlbfs mount", (unsigned long)sf.f_bsize,
                       page_label(page));
  if (page == WKSP_PAGE_NORMAL) {
    int e = posix_fallocate(fd, 0, (off_t)sz);
    if (e) return wksp_err_in(WKSP_ERR_FAIL, e, who, "allocating %" PRIu64 " bytes in %s", sz, dir);
    return WKSP_SUCCESS;
  }
  if (ftruncate(fd, (off_t)sz))
    return wksp_err_in(WKSP_ERR_FAIL, errno, who, "sizing to %" PRIu64 " bytes in %s", sz, dir);
  if (fallocate(fd, 0, 0, (off_t)sz) && errno != EOPNOTSUPP)
    return wksp_err_in(WKSP_ERR_FAIL, errno, who,
                       "reserving %" PRIu64 " bytes of %s pages in %s (free huge pages: see "
                       "/sys/kernel/mm/hugepages/)",
                       sz, page_label(page), dir);
  return WKSP_SUCCESS;
}

static int check_size(const char *who, uint64_t sz, wksp_page_t page) {
  uint64_t psz = wksp_page_sz(page);
  if (!psz) return wksp_err_in(WKSP_ERR_INVAL, 0, who, "page kind %d is unknown", (int)page);
  if (!sz || sz % psz)
    return wksp_err_in(WKSP_ERR_INVAL, 0, who,
                       "size %" PRIu64 " is not a positive multiple of the %s page size %" PRIu64, sz, page_label(page),
                       psz);
  if (sz > REGION_SZ_MAX)
    return wksp_err_in(WKSP_ERR_INVAL, 0, who, "size %" PRIu64 " is larger than the limit %" PRIu64, sz,
                       REGION_SZ_MAX);
  return WKSP_SUCCESS;
}

/* Links the unnamed file fd under path; EEXIST means the name is taken. */
static int link_tmpfile(const char *who, int fd, const char *path) {
  char proc[64];
  snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
  if (!linkat(AT_FDCWD, proc, AT_FDCWD, path, AT_SYMLINK_FOLLOW)) return WKSP_SUCCESS;
  if (errno == EEXIST) return wksp_err_in(WKSP_ERR_EXIST, 0, who, "region %s already exists", path);
  return wksp_err_in(WKSP_ERR_FAIL, errno, who, "linking %s", path);
}

/* Moves the temporary file tmp to path unless path exists.  rename with
 * RENAME_NOREPLACE leaves nothing behind whenever the process dies; file
 * systems without it get link + unlink, where a death between the two
 * leaves the temporary name as a second link. */
static int publish_named(const char *who, const char *tmp, const char *path) {
  int r = renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_NOREPLACE);
  if (r && (errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP)) {
    r = link(tmp, path);
    if (!r) unlink(tmp);
  }
  if (!r) return WKSP_SUCCESS;
  if (errno == EEXIST) return wksp_err_in(WKSP_ERR_EXIST, 0, who, "region %s already exists", path);
  return wksp_err_in(WKSP_ERR_FAIL, errno, who, "renaming %s to %s", tmp, path);
}

int wksp_private_shmem_test_no_tmpfile;

/* A new file for region `name` in dir, unnamed (O_TMPFILE) where /proc lets
 * us link it later, else under a hidden temporary name (tmp[PATH_MAX], ""
 * for the unnamed file) that is not a valid region name, so listings and
 * joins never see it. */
static int create_unpublished(const char *who, const char *dir, const char *name, char tmp[PATH_MAX], int *fd_out) {
  static _Atomic unsigned tmp_seq;
  int unnamed = !wksp_private_shmem_test_no_tmpfile && !access("/proc/self/fd", F_OK);
  int fd = unnamed ? open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600) : -1;
  tmp[0] = 0;
  if (!unnamed || (fd < 0 && (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL))) {
    /* A name taken by a dead process of the same pid is skipped, not
     * removed: in another pid namespace its creator may be alive. */
    for (int tries = 0; fd < 0 && tries < 64; tries++) {
      int n = snprintf(tmp, PATH_MAX, "%s/.%s.wksp-new.%ld.%u", dir, name, (long)getpid(),
                       atomic_fetch_add(&tmp_seq, 1));
      if (n < 0 || n >= PATH_MAX)
        return wksp_err_in(WKSP_ERR_INVAL, 0, who, "temporary path in %s is longer than %d bytes", dir, PATH_MAX - 1);
      fd = open(tmp, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC | O_NOFOLLOW, 0600);
      if (fd < 0 && errno != EEXIST) break;
    }
    if (fd < 0) tmp[0] = 0;
  }
  if (fd < 0) {
    if (errno == EACCES || errno == EPERM) return wksp_err_in(WKSP_ERR_PERM, errno, who, "creating in %s", dir);
    return wksp_err_in(WKSP_ERR_FAIL, errno, who, "creating region %s in directory %s", name, dir);
  }
  *fd_out = fd;
  return WKSP_SUCCESS;
}

/* Maps the unpublished region and lets init fill it in. */
static int run_init(const char *who, const char *name, int fd, uint64_t sz, wksp_page_t page,
                    wksp_private_shmem_init_fn init, void *ctx) {
  void *mem;
  int e = map_aligned(fd, sz, wksp_page_sz(page), PROT_READ | PROT_WRITE, 0, &mem);
  if (e) return wksp_err_in(WKSP_ERR_FAIL, e, who, "mapping new region %s to initialize it", name);
  int rc = init(mem, sz, ctx);
  munmap(mem, (size_t)sz);
  return rc;
}

int wksp_private_shmem_create(const char *name, uint64_t sz, wksp_page_t page, uint32_t mode,
                              wksp_private_shmem_init_fn init, void *ctx) {
  static const char who[] = "wksp_shmem_create";
  int rc = wksp_name_check(name);
  if (rc) return wksp_err_wrap(rc, "%s", who);
  if ((rc = check_size(who, sz, page))) return rc;
  if (mode & ~UINT32_C(0777))
    return wksp_err_in(WKSP_ERR_INVAL, 0, who, "mode 0%o has bits outside 0777", (unsigned)mode);

  char dir[PATH_MAX], path[PATH_MAX];
  if ((rc = wksp_private_shmem_dir(page, dir, sizeof dir))) return wksp_err_wrap(rc, "%s %s", who, name);
  if ((rc = path_join(path, dir, name))) return rc;

  /* Names are unique across page kinds (join looks in every directory); the
   * atomic check within the directory is the publication below. */
  char other[PATH_MAX];
  if (exists_anywhere(name, other)) return wksp_err_in(WKSP_ERR_EXIST, 0, who, "region %s already exists", other);

  char tmp[PATH_MAX];
  int fd = -1;
  if ((rc = create_unpublished(who, dir, name, tmp, &fd))) return rc;
  /* fchmod rather than the umask: the mode must be exact and the umask is
   * process-wide state another thread may rely on. */
  if (fchmod(fd, (mode_t)mode)) rc = wksp_err_in(WKSP_ERR_FAIL, errno, who, "chmod %s", path);
  if (!rc) rc = back(who, dir, fd, sz, page);
  if (!rc && init) rc = run_init(who, name, fd, sz, page, init, ctx);
  if (!rc) rc = tmp[0] ? publish_named(who, tmp, path) : link_tmpfile(who, fd, path);
  if (rc && tmp[0]) unlink(tmp);
  close(fd);
  return rc;
}

int wksp_shmem_create(const char *name, uint64_t sz, wksp_page_t page, uint32_t mode) {
  return wksp_private_shmem_create(name, sz, page, mode, NULL, NULL);
}

int wksp_shmem_unlink(const char *name) {
  static const char who[] = "wksp_shmem_unlink";
  int rc = wksp_name_check(name);
  if (rc) return wksp_err_wrap(rc, "%s", who);
  located_t loc;
  if ((rc = locate(who, name, &loc))) return rc;
  if (!unlink(loc.path)) return WKSP_SUCCESS;
  if (errno == ENOENT) return wksp_err_in(WKSP_ERR_NOENT, 0, who, "region %s is gone", loc.path);
  if (errno == EACCES || errno == EPERM) return wksp_err_in(WKSP_ERR_PERM, errno, who, "%s", loc.path);
  return wksp_err_in(WKSP_ERR_FAIL, errno, who, "%s", loc.path);
}

static int64_t ts_ns(struct statx_timestamp t) { return (int64_t)t.tv_sec * 1000000000 + (int64_t)t.tv_nsec; }

static void info_fill(wksp_private_shmem_listed_t *out, const char *name, const struct statx *sx, wksp_page_t page) {
  wksp_shmem_info_t *info = &out->info;
  memset(out, 0, sizeof *out);
  memcpy(info->name, name, strnlen(name, WKSP_NAME_MAX - 1)); /* name is valid: NUL-terminated by the memset */
  info->sz = (uint64_t)sx->stx_size;
  info->page = page;
  info->mode = (uint32_t)(sx->stx_mode & 07777);
  info->mtime = ts_ns(sx->stx_mtime);
  info->btime = sx->stx_mask & STATX_BTIME ? ts_ns(sx->stx_btime) : 0;
  out->dev_major = sx->stx_dev_major;
  out->dev_minor = sx->stx_dev_minor;
  out->ino = sx->stx_ino;
}

/* statx of a region file, not following a symbolic link. */
static int region_statx(int dirfd, const char *path, struct statx *sx) {
  return statx(dirfd, path, AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS | STATX_BTIME, sx);
}

int wksp_shmem_stat(const char *name, wksp_shmem_info_t *info) {
  static const char who[] = "wksp_shmem_stat";
  int rc = wksp_name_check(name);
  if (rc) return wksp_err_wrap(rc, "%s", who);
  if (!info) return wksp_err_in(WKSP_ERR_INVAL, 0, who, "info is NULL");
  located_t loc;
  if ((rc = locate(who, name, &loc))) return rc;
  struct statx sx;
  if (region_statx(AT_FDCWD, loc.path, &sx)) {
    if (errno == ENOENT) return wksp_err_in(WKSP_ERR_NOENT, 0, who, "region %s is gone", loc.path);
    return wksp_err_in(WKSP_ERR_FAIL, errno, who, "statx %s", loc.path);
  }
  wksp_private_shmem_listed_t l;
  info_fill(&l, name, &sx, loc.page);
  *info = l.info;
  return WKSP_SUCCESS;
}

static int listed_cmp(const void *a, const void *b) {
  const wksp_shmem_info_t *x = &((const wksp_private_shmem_listed_t *)a)->info;
  const wksp_shmem_info_t *y = &((const wksp_private_shmem_listed_t *)b)->info;
  int c = strcmp(x->name, y->name);
  return c ? c : (int)x->page - (int)y->page;
}

/* Appends the regions of directory `dir` to *v (n used, cap allocated). */
static int list_dir(const char *dir, wksp_private_shmem_listed_t **v, size_t *n, size_t *cap) {
  static const char who[] = "wksp_shmem_list";
  struct statfs sf;
  if (statfs(dir, &sf)) return wksp_err_in(WKSP_ERR_FAIL, errno, who, "%s", dir);
  int page = fs_page(&sf);
  if (page < 0) return WKSP_SUCCESS; /* hugetlbfs of a page size we do not use */
  DIR *d = opendir(dir);
  if (!d) return wksp_err_in(WKSP_ERR_FAIL, errno, who, "opendir %s", dir);
  int rc = WKSP_SUCCESS;
  struct dirent *e;
  while (!rc && (e = readdir(d))) {
    struct statx sx;
    if (!wksp_private_name_len(e->d_name)) continue;
    if (region_statx(dirfd(d), e->d_name, &sx) || !S_ISREG(sx.stx_mode)) continue;
    if (*n == *cap) {
      size_t c = *cap ? 2 * *cap : 64;
      wksp_private_shmem_listed_t *nv = realloc(*v, c * sizeof *nv);
      if (!nv) {
        rc = wksp_err_in(WKSP_ERR_NOMEM, ENOMEM, who, "listing %s", dir);
        break;
      }
      *v = nv;
      *cap = c;
    }
    info_fill(&(*v)[(*n)++], e->d_name, &sx, (wksp_page_t)page);
  }
  closedir(d);
  return rc;
}

int wksp_private_shmem_regions(wksp_private_shmem_listed_t **out, size_t *cnt) {
  char dirs[3][PATH_MAX];
  dirs_known(dirs);
  wksp_private_shmem_listed_t *v = NULL;
  size_t n = 0, cap = 0;
  int rc = WKSP_SUCCESS;
  for (int k = 0; k < 3 && !rc; k++)
    if (dirs[k][0]) rc = list_dir(dirs[k], &v, &n, &cap);
  if (rc) {
    free(v);
    v = NULL;
    n = 0;
  } else if (n) {
    qsort(v, n, sizeof *v, listed_cmp);
  }
  *out = v;
  *cnt = n;
  return rc;
}

int wksp_shmem_list(int (*fn)(const wksp_shmem_info_t *info, void *ctx), void *ctx) {
  if (!fn) return wksp_err_in(WKSP_ERR_INVAL, 0, "wksp_shmem_list", "fn is NULL");
  wksp_private_shmem_listed_t *v;
  size_t n;
  int rc = wksp_private_shmem_regions(&v, &n);
  for (size_t i = 0; i < n && !rc; i++) rc = fn(&v[i].info, ctx);
  free(v);
  return rc;
}

/* ---- joins -------------------------------------------------------------- */

/* Table_mu held.  The slot already mapping this file in this mode. */
static region_t *slot_joined(const char *name, int writable, const struct stat *st) {
  size_t n = atomic_load_explicit(&table_hwm, memory_order_relaxed);
  for (size_t i = 0; i < n; i++) {
    region_t *r = &table[i];
    if (slot_hi(r) && !r->anon && r->dev == st->st_dev && r->ino == st->st_ino &&
        atomic_load_explicit(&r->writable, memory_order_relaxed) == writable && !strcmp(r->name, name))
      return r;
  }
  return NULL;
}

/* Opens the located region in the join's mode and checks what it holds. */
static int join_open(const char *who, const char *name, int writable, located_t *loc, int *fd_out) {
  int rc = locate(who, name, loc);
  if (rc) return rc;
  int fd = open(loc->path, (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) {
    if (errno == ENOENT) return wksp_err_in(WKSP_ERR_NOENT, 0, who, "region %s is gone", loc->path);
    if (errno == EACCES || errno == EPERM)
      return wksp_err_in(WKSP_ERR_PERM, errno, who, "opening %s %s", loc->path, writable ? "read-write" : "read-only");
    return wksp_err_in(WKSP_ERR_FAIL, errno, who, "opening %s", loc->path);
  }
  /* The name may have been replaced since locate: trust only the fd. */
  if (fstat(fd, &loc->st)) rc = wksp_err_in(WKSP_ERR_FAIL, errno, who, "fstat %s", loc->path);
  uint64_t sz = (uint64_t)loc->st.st_size, psz = wksp_page_sz(loc->page);
  if (!rc && (!S_ISREG(loc->st.st_mode) || !sz || sz % psz || sz > REGION_SZ_MAX))
    rc = wksp_err_in(WKSP_ERR_CORRUPT, 0, who,
                     "%s has %" PRIu64 " bytes, not a positive multiple of its %s page size %" PRIu64 " (not a "
                     "region, or one still being created by a system without O_TMPFILE)",
                     loc->path, sz, page_label(loc->page), psz);
  if (rc) close(fd);
  else *fd_out = fd;
  return rc;
}

int wksp_shmem_join(const char *name, int writable, void **mem, uint64_t *sz) {
  static const char who[] = "wksp_shmem_join";
  int rc = wksp_name_check(name);
  if (rc) return wksp_err_wrap(rc, "%s", who);
  if (!mem) return wksp_err_in(WKSP_ERR_INVAL, 0, who, "mem is NULL");
  writable = !!writable;

  table_lock();
  located_t loc;
  int fd = -1;
  rc = join_open(who, name, writable, &loc, &fd);
  region_t *r = rc ? NULL : slot_joined(name, writable, &loc.st);
  if (!rc && !r) {
    r = slot_alloc();
    if (!r)
      rc = wksp_err_wrap(wksp_err(WKSP_ERR_FAIL, 0, "this process holds %d regions already", REGION_MAX), "%s %s", who,
                         name);
  }
  if (!rc && !r->refcnt) {
    void *m;
    uint64_t len = (uint64_t)loc.st.st_size;
    int e = map_aligned(fd, len, wksp_page_sz(loc.page), writable ? PROT_READ | PROT_WRITE : PROT_READ, 0, &m);
    if (e) {
      rc = wksp_err_in(WKSP_ERR_FAIL, e, who, "mapping %" PRIu64 " bytes of %s%s", len, loc.path,
                       e == ENOMEM && loc.page != WKSP_PAGE_NORMAL ? " (not enough free huge pages?)" : "");
    } else {
      r->anon = 0;
      r->fd = fd; /* the slot owns it now */
      fd = -1;
      memcpy(r->name, name, strlen(name) + 1);
      r->dev = loc.st.st_dev;
      r->ino = loc.st.st_ino;
      r->page = loc.page;
      slot_publish(r, m, len, writable);
    }
  }
  if (!rc) {
    r->refcnt++;
    *mem = (void *)slot_lo(r);
    if (sz) *sz = slot_hi(r) - slot_lo(r);
  }
  table_unlock();
  if (fd >= 0) close(fd);
  return rc;
}

/* Table_mu held.  The slot that starts at mem, with a precise complaint
 * when there is none of the wanted kind. */
static int slot_at(const char *who, void *mem, int anon, region_t **out) {
  region_t *r = slot_containing((uintptr_t)mem);
  const char *want = anon ? "an anonymous region" : "a joined region";
  if (!r) return wksp_err_in(WKSP_ERR_INVAL, 0, who, "%p is not %s of this process", mem, want);
  if (r->anon != anon)
    return wksp_err_in(WKSP_ERR_INVAL, 0, who, "%p is not %s (it is %s%s)", mem, want,
                       r->anon ? "anonymous" : "region ", r->anon ? "" : r->name);
  if (slot_lo(r) != (uintptr_t)mem)
    return wksp_err_in(WKSP_ERR_INVAL, 0, who, "%p is inside %s at %p, pass its start", mem, want, (void *)slot_lo(r));
  *out = r;
  return WKSP_SUCCESS;
}

static void slot_unmap(region_t *r) {
  void *m = (void *)slot_lo(r);
  size_t len = (size_t)(slot_hi(r) - slot_lo(r));
  slot_free(r);
  munmap(m, len);
}

int wksp_shmem_leave(void *mem) {
  table_lock();
  region_t *r = NULL;
  int rc = slot_at("wksp_shmem_leave", mem, 0, &r);
  if (!rc && !--r->refcnt) slot_unmap(r);
  table_unlock();
  return rc;
}

/* ---- anonymous regions -------------------------------------------------- */

int wksp_shmem_anon_new(uint64_t sz, wksp_page_t page, void **mem) {
  static const char who[] = "wksp_shmem_anon_new";
  int rc = check_size(who, sz, page);
  if (rc) return rc;
  if (!mem) return wksp_err_in(WKSP_ERR_INVAL, 0, who, "mem is NULL");
  int flags = MAP_ANONYMOUS;
  if (page != WKSP_PAGE_NORMAL)
    flags |= MAP_HUGETLB | (__builtin_ctzll(wksp_page_sz(page)) << MAP_HUGE_SHIFT);

  table_lock();
  region_t *r = slot_alloc();
  void *m = NULL;
  if (!r) rc = wksp_err_in(WKSP_ERR_FAIL, 0, who, "this process holds %d regions already", REGION_MAX);
  int e = rc ? 0 : map_aligned(-1, sz, wksp_page_sz(page), PROT_READ | PROT_WRITE, flags, &m);
  if (e == EINVAL && page != WKSP_PAGE_NORMAL)
    rc = wksp_err_in(WKSP_ERR_UNSUP, e, who, "the kernel offers no %s pages", page_label(page));
  else if (e)
    rc = wksp_err_in(WKSP_ERR_FAIL, e, who, "mapping %" PRIu64 " bytes of %s pages%s", sz, page_label(page),
                     page != WKSP_PAGE_NORMAL ? " (are enough huge pages reserved? see "
                                                "/sys/kernel/mm/hugepages/)"
                                              : "");
  if (!rc) {
    r->anon = 1;
    r->fd = -1;
    r->name[0] = 0;
    r->dev = 0;
    r->ino = 0;
    r->page = page;
    r->refcnt = 1;
    slot_publish(r, m, sz, 1);
    *mem = m;
  }
  table_unlock();
  return rc;
}

int wksp_shmem_anon_delete(void *mem) {
  table_lock();
  region_t *r = NULL;
  int rc = slot_at("wksp_shmem_anon_delete", mem, 1, &r);
  if (!rc) slot_unmap(r);
  table_unlock();
  return rc;
}
