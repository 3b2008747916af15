/* Named and anonymous workspaces: the glue between shared-memory regions
 * (src/shmem/) and the allocator (wksp_new / wksp_join / ...), plus
 * "name:gaddr" address strings.
 *
 * A wksp_t * is the address of the region's first byte, so attachments are
 * counted by the shmem join table: attaching a name twice gives the same
 * handle and needs two detaches.  Every failure path undoes what the call
 * did and keeps the first error's message.  A named workspace is formatted
 * before its region gets its name (wksp_private_shmem_create's init), so a
 * name never holds a region without one, whenever its creator dies. */
#include <wksp/wksp.h>

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "shmem/shmem_private.h"
#include "wksp_private.h"
#include "util/err.h"

#define TYPICAL_ALLOC_SZ (UINT64_C(64) << 10) /* part_max 0: sized for 64 KiB allocations */

/* sz rounded up to a whole number of pages; 0 on overflow or bad page. */
static uint64_t round_to_page(uint64_t sz, wksp_page_t page) {
  uint64_t psz = wksp_page_sz(page);
  if (!psz || sz > UINT64_MAX - (psz - 1)) return 0;
  return (sz + psz - 1) & ~(psz - 1);
}

/* part_max (0: estimated) and data_max for a workspace filling `sz` bytes. */
static int size_parts(const char *who, const char *name, uint64_t sz, uint64_t *part_max,
                      uint64_t *data_max) {
  if (!*part_max) *part_max = wksp_part_max_est(sz, TYPICAL_ALLOC_SZ);
  if (!*part_max)
    return wksp_err_wrap(wksp_err(WKSP_ERR_INVAL, 0,
                                  "%" PRIu64 " bytes are too few for the default part_max (sized for %" PRIu64 "-byte "
                                  "allocations); give a part_max or a larger size",
                                  sz, TYPICAL_ALLOC_SZ),
                         "%s %s", who, name);
  *data_max = wksp_data_max_est(sz, *part_max);
  if (!*data_max)
    return wksp_err_wrap(
        wksp_err(WKSP_ERR_INVAL, 0, "%" PRIu64 " bytes cannot hold %" PRIu64 " partitions and any data", sz, *part_max),
        "%s %s", who, name);
  return WKSP_SUCCESS;
}

/* Region bytes for a requested workspace size, with the reason on failure. */
static int region_sz(const char *who, uint64_t sz, wksp_page_t page, uint64_t *out) {
  if (!wksp_page_sz(page)) return wksp_err_in(WKSP_ERR_INVAL, 0, who, "page kind %d is unknown", (int)page);
  *out = round_to_page(sz, page);
  if (!sz || !*out)
    return wksp_err_in(WKSP_ERR_INVAL, 0, who, "size %" PRIu64 " is not a usable workspace size", sz);
  return WKSP_SUCCESS;
}

typedef struct {
  const char *name;
  uint32_t seed;
  uint64_t part_max, data_max;
} format_ctx_t;

/* Formats the new region before wksp_private_shmem_create gives it its
 * name, so that the name never holds a region without a workspace. */
static int format_region(void *mem, uint64_t sz, void *vctx) {
  const format_ctx_t *c = vctx;
  wksp_t *w;
  (void)sz;
  wksp_private_hook(WKSP_HOOK_NEW_REGION);
  int rc = wksp_new(mem, c->name, c->seed, c->part_max, c->data_max, &w);
  if (!rc) wksp_private_hook(WKSP_HOOK_NEW_FORMATTED);
  return rc;
}

/* Creates region `name` of rsz bytes holding a workspace of part_max and
 * data_max (whose footprint fits in rsz). */
static int create_named(const char *who, const char *name, uint64_t rsz, wksp_page_t page, uint32_t mode,
                        uint32_t seed, uint64_t part_max, uint64_t data_max) {
  format_ctx_t c = {.name = name, .seed = seed, .part_max = part_max, .data_max = data_max};
  int rc = wksp_private_shmem_create(name, rsz, page, mode, format_region, &c);
  return rc ? wksp_err_wrap(rc, "%s %s", who, name) : WKSP_SUCCESS;
}

int wksp_new_named(const char *name, uint64_t sz, wksp_page_t page, uint32_t mode, uint32_t seed,
                   uint64_t part_max) {
  static const char who[] = "wksp_new_named";
  uint64_t rsz, data_max;
  int rc = wksp_name_check(name);
  if (rc) return wksp_err_wrap(rc, "%s", who);
  if ((rc = region_sz(who, sz, page, &rsz))) return rc;
  if ((rc = size_parts(who, name, rsz, &part_max, &data_max))) return rc;
  return create_named(who, name, rsz, page, mode, seed, part_max, data_max);
}

/* The region is the footprint rounded up to the page size; the workspace
 * keeps exactly data_max and leaves the rounding unused (wksp_attach only
 * asks that the footprint fit in the region), so that a checkpoint of it
 * describes the same sizes as the checkpoint it was made from. */
int wksp_new_named_exact(const char *name, uint64_t part_max, uint64_t data_max, wksp_page_t page,
                         uint32_t mode, uint32_t seed) {
  static const char who[] = "wksp_new_named_exact";
  uint64_t rsz;
  int rc = wksp_name_check(name);
  if (rc) return wksp_err_wrap(rc, "%s", who);
  uint64_t fp = wksp_footprint(part_max, data_max);
  if (!fp)
    return wksp_err(WKSP_ERR_INVAL, 0, "%s %s: part_max %" PRIu64 " and data_max %" PRIu64 " give no valid workspace",
                    who, name, part_max, data_max);
  if ((rc = region_sz(who, fp, page, &rsz))) return rc;
  return create_named(who, name, rsz, page, mode, seed, part_max, data_max);
}

int wksp_new_anon(const char *name, uint64_t sz, wksp_page_t page, uint32_t seed, uint64_t part_max,
                  wksp_t **out) {
  static const char who[] = "wksp_new_anon";
  uint64_t rsz, data_max;
  int rc = wksp_name_check(name);
  if (rc) return wksp_err_wrap(rc, "%s", who);
  if (!out) return wksp_err_in(WKSP_ERR_INVAL, 0, who, "out is NULL");
  if ((rc = region_sz(who, sz, page, &rsz))) return rc;
  if ((rc = size_parts(who, name, rsz, &part_max, &data_max))) return rc;

  void *mem = NULL;
  if ((rc = wksp_shmem_anon_new(rsz, page, &mem))) return wksp_err_wrap(rc, "%s %s", who, name);
  rc = wksp_new(mem, name, seed, part_max, data_max, out);
  if (rc) {
    rc = wksp_err_wrap(rc, "%s %s", who, name);
    wksp_shmem_anon_delete(mem);
  }
  return rc;
}

int wksp_delete_anon(wksp_t *w) {
  wksp_private_shmem_region_t reg;
  if (wksp_private_shmem_find(w, &reg) || !reg.anon || reg.mem != (void *)w)
    return wksp_err_in(WKSP_ERR_INVAL, 0, "wksp_delete_anon", "%p is not a workspace from wksp_new_anon", (void *)w);
  int rc = wksp_delete(w);
  if (rc) return wksp_err_wrap(rc, "wksp_delete_anon");
  return wksp_shmem_anon_delete(w);
}

/* A region's header can claim any sizes: the workspace it describes must
 * fit in the bytes actually mapped, or every later access could fault. */
static int check_fits(const char *who, const char *name, wksp_t *w, uint64_t sz) {
  uint64_t part_max = wksp_part_max(w), data_max = wksp_data_max(w);
  uint64_t fp = wksp_footprint(part_max, data_max);
  if (!fp || fp > sz)
    return wksp_err_wrap(
        wksp_err(WKSP_ERR_CORRUPT, 0,
                 "header says part_max %" PRIu64 ", data_max %" PRIu64 " (footprint %" PRIu64 ") but the region "
                 "has %" PRIu64 " bytes",
                 part_max, data_max, fp, sz),
        "%s %s", who, name);
  return WKSP_SUCCESS;
}

int wksp_attach(const char *name, int flags, wksp_t **out) {
  static const char who[] = "wksp_attach";
  int rc = wksp_name_check(name);
  if (rc) return wksp_err_wrap(rc, "%s", who);
  if (!out) return wksp_err_in(WKSP_ERR_INVAL, 0, who, "out is NULL");
  if (flags & ~WKSP_RDONLY) return wksp_err_in(WKSP_ERR_INVAL, 0, who, "unknown flags 0x%x", (unsigned)flags);

  void *mem = NULL;
  uint64_t sz = 0;
  wksp_t *w = NULL;
  if ((rc = wksp_shmem_join(name, !(flags & WKSP_RDONLY), &mem, &sz))) return wksp_err_wrap(rc, "%s", who);
  rc = wksp_join(mem, &w);
  if (rc) rc = wksp_err_wrap(rc, "%s %s", who, name);
  else if ((rc = check_fits(who, name, w, sz))) wksp_leave(w);
  if (rc) wksp_shmem_leave(mem);
  else *out = w;
  return rc;
}

/* The named join that starts at w, or INVAL. */
static int named_join_at(const char *who, const void *w) {
  wksp_private_shmem_region_t reg;
  if (!w) return wksp_err_in(WKSP_ERR_INVAL, 0, who, "workspace is NULL");
  if (wksp_private_shmem_find(w, &reg) || reg.anon || reg.mem != w)
    return wksp_err_in(WKSP_ERR_INVAL, 0, who, "%p is not a workspace from wksp_attach", w);
  return WKSP_SUCCESS;
}

int wksp_detach(wksp_t *w) {
  int rc = named_join_at("wksp_detach", w);
  if (rc) return rc;
  rc = wksp_leave(w);
  int rc2 = wksp_shmem_leave(w);
  return rc ? rc : rc2;
}

/* Removing the name is all deletion needs: processes still attached keep a
 * working workspace, and the memory goes back to the system at the last
 * detach.  The magic is left alone for the same reason. */
int wksp_delete_named(const char *name) {
  static const char who[] = "wksp_delete_named";
  wksp_t *w = NULL;
  int rc = wksp_attach(name, WKSP_RDONLY, &w);
  if (rc) return wksp_err_wrap(rc, "%s", who);
  wksp_detach(w);
  return wksp_shmem_unlink(name);
}

/* Writes to note why the region joined at mem (sz bytes) holds no usable
 * workspace, or "" when it holds one. */
static void describe_content(const char *who, const char *name, void *mem, uint64_t sz, char *note, size_t note_sz) {
  wksp_t *w = NULL;
  uint64_t magic = __atomic_load_n((const uint64_t *)mem, __ATOMIC_ACQUIRE);
  if (magic != WKSP_MAGIC) {
    snprintf(note, note_sz, "held no workspace (bad magic 0x%016" PRIx64 ")", magic);
    return;
  }
  int rc = wksp_join(mem, &w);
  if (!rc) rc = check_fits(who, name, w, sz);
  if (rc) snprintf(note, note_sz, "held a damaged workspace (%s)", wksp_errcause());
}

int wksp_delete_region(const char *name, char *note, size_t note_sz) {
  static const char who[] = "wksp_delete_region";
  char buf[WKSP_NOTE_MAX] = "";
  void *mem = NULL;
  uint64_t sz = 0;
  if (note && note_sz) note[0] = 0;
  int rc = wksp_shmem_join(name, 0, &mem, &sz);
  if (rc) return wksp_err_wrap(rc, "%s", who);
  describe_content(who, name, mem, sz, buf, sizeof buf);
  wksp_shmem_leave(mem);
  if ((rc = wksp_shmem_unlink(name))) return wksp_err_wrap(rc, "%s", who);
  if (note && note_sz) snprintf(note, note_sz, "%s", buf);
  return WKSP_SUCCESS;
}

/* ---- "name:gaddr" address strings ---------------------------------------- */

int wksp_addr_format(const char *name, uint64_t gaddr, char *buf, size_t buf_sz) {
  static const char who[] = "wksp_addr_format";
  int rc = wksp_name_check(name);
  if (rc) return wksp_err_wrap(rc, "%s", who);
  if (!buf) return wksp_err_in(WKSP_ERR_INVAL, 0, who, "buf is NULL");
  char tmp[WKSP_ADDR_MAX];
  int n = snprintf(tmp, sizeof tmp, "%s:%" PRIu64, name, gaddr);
  if ((size_t)n + 1 > buf_sz)
    return wksp_err_in(WKSP_ERR_INVAL, 0, who, "\"%s\" needs %d bytes, buf has %zu", tmp, n + 1, buf_sz);
  memcpy(buf, tmp, (size_t)n + 1);
  return WKSP_SUCCESS;
}

static int digit_val(char c, int hex) {
  if (c >= '0' && c <= '9') return c - '0';
  if (hex && c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (hex && c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* Strict unsigned parse of all of s: decimal, or hex after 0x / 0X; no
 * sign, no spaces, no empty digits, no overflow. */
static int parse_gaddr(const char *who, const char *addr, const char *s, uint64_t *out) {
  int hex = s[0] == '0' && (s[1] == 'x' || s[1] == 'X');
  const char *d = s + (hex ? 2 : 0);
  uint64_t base = hex ? 16 : 10, v = 0;
  if (!*d)
    return wksp_err_wrap(wksp_err(WKSP_ERR_INVAL, 0, "the gaddr after ':' has no digits"), "%s \"%s\"", who, addr);
  for (; *d; d++) {
    int dv = digit_val(*d, hex);
    if (dv < 0)
      return wksp_err_wrap(wksp_err(WKSP_ERR_INVAL, 0, "byte 0x%02x in the gaddr is not a %s digit", (unsigned char)*d,
                                    hex ? "hex" : "decimal"),
                           "%s \"%s\"", who, addr);
    if (v > (UINT64_MAX - (uint64_t)dv) / base)
      return wksp_err_wrap(wksp_err(WKSP_ERR_INVAL, 0, "the gaddr does not fit in 64 bits"), "%s \"%s\"", who, addr);
    v = v * base + (uint64_t)dv;
  }
  *out = v;
  return WKSP_SUCCESS;
}

int wksp_addr_parse(const char *addr, char name[WKSP_NAME_MAX], uint64_t *gaddr) {
  static const char who[] = "wksp_addr_parse";
  if (!addr || !name || !gaddr) return wksp_err_in(WKSP_ERR_INVAL, 0, who, "NULL argument");
  /* A name never holds ':', so the first one ends it; look no further
   * than a valid name could reach. */
  const char *colon = memchr(addr, ':', strnlen(addr, WKSP_NAME_MAX));
  if (!colon)
    return wksp_err_wrap(wksp_err(WKSP_ERR_INVAL, 0, "no ':' after a name of 1 to 39 bytes"), "%s \"%.48s\"", who,
                         addr);
  size_t len = (size_t)(colon - addr);
  char nm[WKSP_NAME_MAX];
  memcpy(nm, addr, len);
  nm[len] = 0;
  int rc = wksp_name_check(nm);
  if (rc) return wksp_err_wrap(rc, "%s", who);
  uint64_t v = 0;
  if ((rc = parse_gaddr(who, addr, colon + 1, &v))) return rc;
  memcpy(name, nm, len + 1);
  *gaddr = v;
  return WKSP_SUCCESS;
}

int wksp_map(const char *addr, void **laddr) {
  static const char who[] = "wksp_map";
  char name[WKSP_NAME_MAX];
  uint64_t gaddr;
  if (!laddr) return wksp_err_in(WKSP_ERR_INVAL, 0, who, "laddr is NULL");
  int rc = wksp_addr_parse(addr, name, &gaddr);
  if (rc) return wksp_err_wrap(rc, "%s", who);
  wksp_t *w;
  if ((rc = wksp_attach(name, 0, &w))) return wksp_err_wrap(rc, "%s", who);
  void *p = wksp_laddr(w, gaddr);
  if (!p) {
    rc = wksp_err_wrap(wksp_err(WKSP_ERR_INVAL, 0, "gaddr %" PRIu64 " is not inside workspace %s", gaddr, name),
                       "%s %s", who, addr);
    wksp_detach(w);
    return rc;
  }
  *laddr = p;
  return WKSP_SUCCESS;
}

int wksp_unmap(void *laddr) {
  wksp_private_shmem_region_t reg;
  if (!laddr || wksp_private_shmem_find(laddr, &reg) || reg.anon)
    return wksp_err_in(WKSP_ERR_INVAL, 0, "wksp_unmap", "%p is not inside a mapped workspace", laddr);
  return wksp_detach((wksp_t *)reg.mem);
}
