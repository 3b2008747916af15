/* Where named regions live: one directory per page kind.
 *
 * Normal pages live in $WKSP_SHMEM_DIR or /dev/shm (tmpfs).  Huge and
 * gigantic pages can only come from a hugetlbfs mount whose page size
 * matches, so those directories are either named by the user (and checked)
 * or found in /proc/mounts.  Nothing is cached: mounts and the environment
 * may change while the process runs, and these lookups are only made on
 * create / join / stat / list, never on a hot path. */
#include "shmem_private.h"

#include <errno.h>
#include <linux/magic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/vfs.h>

#include "util/err.h"

static const char *const env_name[3] = {"WKSP_SHMEM_DIR", "WKSP_SHMEM_HUGE_DIR",
                                        "WKSP_SHMEM_GIGANTIC_DIR"};
static const char *const pagesize_opt[3] = {"", "2M", "1G"};

/* Parses a mount option size such as "2M", "1024M", "1G", "2048k". */
static uint64_t parse_size(const char *s, size_t n) {
  uint64_t v = 0;
  size_t i = 0;
  for (; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
    if (v > (UINT64_MAX - 9) / 10) return 0;
    v = v * 10 + (uint64_t)(s[i] - '0');
  }
  if (i == 0) return 0;
  unsigned shift = 0;
  if (i < n) {
    switch (s[i]) {
    case 'k': case 'K': shift = 10; break;
    case 'm': case 'M': shift = 20; break;
    case 'g': case 'G': shift = 30; break;
    default: return 0;
    }
    if (++i != n) return 0;
  }
  if (v > (UINT64_MAX >> shift)) return 0;
  return v << shift;
}

/* /proc/mounts escapes space, tab, newline and backslash as \ooo. */
static int unescape(const char *s, size_t n, char *out, size_t out_sz) {
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (c == '\\' && i + 3 < n) {
      const char *d = s + i + 1;
      if (d[0] >= '0' && d[0] <= '3' && d[1] >= '0' && d[1] <= '7' && d[2] >= '0' && d[2] <= '7') {
        c = (char)((d[0] - '0') * 64 + (d[1] - '0') * 8 + (d[2] - '0'));
        i += 3;
      }
    }
    if (o + 1 >= out_sz) return 0;
    out[o++] = c;
  }
  out[o] = 0;
  return 1;
}

/* The kernel's default huge page size (Hugepagesize in /proc/meminfo), 0
 * if unknown. */
static uint64_t default_huge_sz(void) {
  FILE *f = fopen("/proc/meminfo", "re");
  if (!f) return 0;
  char line[256];
  unsigned long long kb = 0;
  while (fgets(line, sizeof line, f))
    if (sscanf(line, "Hugepagesize: %llu kB", &kb) == 1) break;
  fclose(f);
  return (uint64_t)kb << 10;
}

/* The page size of a hugetlbfs mount from its option string; *default_sz
 * (0: not read yet) is what a mount without pagesize= has. */
static uint64_t mount_page_sz(const char *opts, size_t n, uint64_t *default_sz) {
  const char *end = opts + n;
  for (const char *o = opts; o < end;) {
    const char *comma = memchr(o, ',', (size_t)(end - o));
    const char *oe = comma ? comma : end;
    if ((size_t)(oe - o) > 9 && !memcmp(o, "pagesize=", 9)) return parse_size(o + 9, (size_t)(oe - o - 9));
    o = oe + 1;
  }
  if (!*default_sz) *default_sz = default_huge_sz();
  return *default_sz;
}

/* One pass over a /proc/mounts stream: for each k < n with dirs[k][0] == 0,
 * the first hugetlbfs mount of page size want[k] goes to dirs[k]
 * (unescaped; left "" if it does not fit in dir_sz). */
static void scan_mounts(FILE *mounts, uint64_t default_sz, const uint64_t *want, char **dirs,
                        size_t n, size_t dir_sz) {
  char *line = NULL;
  size_t cap = 0;
  while (getline(&line, &cap, mounts) >= 0) {
    /* fields: device mountpoint type options dump pass */
    const char *f[4];
    size_t len[4];
    const char *p = line;
    int k = 0;
    for (; k < 4; k++) {
      while (*p == ' ' || *p == '\t') p++;
      if (!*p || *p == '\n') break;
      f[k] = p;
      while (*p && *p != ' ' && *p != '\t' && *p != '\n') p++;
      len[k] = (size_t)(p - f[k]);
    }
    if (k < 4 || len[2] != 9 || memcmp(f[2], "hugetlbfs", 9)) continue;
    uint64_t psz = mount_page_sz(f[3], len[3], &default_sz);
    for (size_t i = 0; i < n; i++)
      if (!dirs[i][0] && psz == want[i] && !unescape(f[1], len[1], dirs[i], dir_sz)) dirs[i][0] = 0;
  }
  free(line);
}

int wksp_private_shmem_mounts_find(FILE *mounts, uint64_t page_sz, uint64_t default_sz, char *dir,
                                   size_t dir_sz) {
  if (!dir_sz) return 0;
  dir[0] = 0;
  scan_mounts(mounts, default_sz, &page_sz, &dir, 1, dir_sz);
  return dir[0] != 0;
}

/* Reads /proc/mounts once for the page kinds page[0..n) (n <= 3), filling
 * the dirs[k] that are still "". */
static void mounts_lookup(const wksp_page_t *page, char **dirs, size_t n, size_t dir_sz) {
  uint64_t want[3];
  for (size_t k = 0; k < n; k++) want[k] = wksp_page_sz(page[k]);
  FILE *f = fopen("/proc/mounts", "re");
  if (!f) return;
  scan_mounts(f, 0, want, dirs, n, dir_sz);
  fclose(f);
}

/* A user-named huge page directory must really be hugetlbfs of that page
 * size: anything else would silently give normal pages or fail at mmap. */
static int check_huge_dir(wksp_page_t page, const char *dir, char *why, size_t why_sz) {
  struct statfs sf;
  if (statfs(dir, &sf)) {
    snprintf(why, why_sz, "%s=%s cannot be used for %s pages: %s", env_name[page], dir,
             pagesize_opt[page], strerror(errno));
    return WKSP_ERR_UNSUP;
  }
  if ((uint64_t)sf.f_type != (uint64_t)HUGETLBFS_MAGIC || (uint64_t)sf.f_bsize != wksp_page_sz(page)) {
    snprintf(why, why_sz,
             "%s=%s is not a hugetlbfs mount with %s pages (found file system type 0x%lx, block "
             "size %lu); point it at one, e.g. made by `mount -t hugetlbfs -o pagesize=%s none "
             "/mnt/wksp-%s`",
             env_name[page], dir, pagesize_opt[page], (unsigned long)sf.f_type,
             (unsigned long)sf.f_bsize, pagesize_opt[page],
             page == WKSP_PAGE_HUGE ? "huge" : "gigantic");
    return WKSP_ERR_UNSUP;
  }
  return WKSP_SUCCESS;
}

static int copy_dir(const char *src, char *dir, size_t dir_sz, char *why, size_t why_sz) {
  size_t n = strlen(src);
  if (n + 1 > dir_sz) {
    snprintf(why, why_sz, "shmem directory \"%s\" is longer than %zu bytes", src, dir_sz - 1);
    return WKSP_ERR_INVAL;
  }
  memcpy(dir, src, n + 1);
  return WKSP_SUCCESS;
}

/* The lookup itself; the reason for a failure goes to why[why_sz] so that
 * callers probing every page kind do not record (and log) errors. */
static int dir_find(wksp_page_t page, char *dir, size_t dir_sz, char *why, size_t why_sz) {
  if (!wksp_page_sz(page)) {
    snprintf(why, why_sz, "page kind %d is unknown", (int)page);
    return WKSP_ERR_INVAL;
  }
  if (!dir || !dir_sz) {
    snprintf(why, why_sz, "shmem directory buffer is NULL");
    return WKSP_ERR_INVAL;
  }

  const char *env = getenv(env_name[page]);
  if (env && *env) {
    int rc = page == WKSP_PAGE_NORMAL ? WKSP_SUCCESS : check_huge_dir(page, env, why, why_sz);
    return rc ? rc : copy_dir(env, dir, dir_sz, why, why_sz);
  }
  if (page == WKSP_PAGE_NORMAL) return copy_dir("/dev/shm", dir, dir_sz, why, why_sz);

  dir[0] = 0;
  mounts_lookup(&page, &dir, 1, dir_sz);
  if (dir[0]) return WKSP_SUCCESS;
  snprintf(why, why_sz,
           "no hugetlbfs mount with %s pages: none in /proc/mounts and %s is not set; to use %s "
           "pages reserve some (/sys/kernel/mm/hugepages/*/nr_hugepages or the kernel command "
           "line), mount them (`mount -t hugetlbfs -o pagesize=%s none /mnt/wksp-%s`) or set %s to "
           "such a mount; normal pages need none of this",
           pagesize_opt[page], env_name[page], pagesize_opt[page], pagesize_opt[page],
           page == WKSP_PAGE_HUGE ? "huge" : "gigantic", env_name[page]);
  return WKSP_ERR_UNSUP;
}

int wksp_private_shmem_dir(wksp_page_t page, char *dir, size_t dir_sz) {
  char why[1024];
  int rc = dir_find(page, dir, dir_sz, why, sizeof why);
  return rc ? wksp_err(rc, 0, "%s", why) : WKSP_SUCCESS;
}

int wksp_private_shmem_dir_quiet(wksp_page_t page, char *dir, size_t dir_sz) {
  char why[1024];
  return dir_find(page, dir, dir_sz, why, sizeof why);
}

void wksp_private_shmem_dirs(char dirs[3][PATH_MAX]) {
  wksp_page_t from_mounts[2];
  char *mount_dirs[2];
  size_t n = 0;
  for (int k = 0; k < 3; k++) {
    wksp_page_t page = (wksp_page_t)k;
    const char *env = getenv(env_name[k]);
    if (page == WKSP_PAGE_NORMAL || (env && *env)) {
      if (wksp_private_shmem_dir_quiet(page, dirs[k], PATH_MAX)) dirs[k][0] = 0;
    } else {
      dirs[k][0] = 0;
      from_mounts[n] = page;
      mount_dirs[n++] = dirs[k];
    }
  }
  if (n) mounts_lookup(from_mounts, mount_dirs, n, PATH_MAX);
}
