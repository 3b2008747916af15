/* Allocation commands: alloc, free, tag, tag-free, memset, write, read,
 * usage, query. */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Parses "NAME:GADDR" and attaches its workspace. */
static int attach_addr(cli_t *c, const char *addr, int flags, wksp_t **w, uint64_t *gaddr) {
  char name[WKSP_NAME_MAX];
  int rc = cli_addr(c, "address", addr, name, gaddr);
  if (rc != CLI_GO) return rc;
  return cli_attach(c, name, flags, w);
}

/* An address outside the data region is an error for every command that
 * takes one (free and memset hear it from the library). */
static int in_data(cli_t *c, wksp_t *w, const char *addr, uint64_t gaddr) {
  uint64_t lo = wksp_gaddr_lo(w), hi = wksp_gaddr_hi(w);
  if (gaddr < lo || gaddr >= hi)
    return cli_fail(c, "looking up %s: outside the data region [%" PRIu64 ",%" PRIu64 ") of \"%s\"", addr, lo,
                    hi, wksp_name(w));
  return CLI_GO;
}

/* The partition of the allocation containing gaddr (one O(log n) lookup,
 * consistent even while other processes allocate and free). */
static int find_alloc(cli_t *c, wksp_t *w, const char *addr, uint64_t gaddr, wksp_part_t *out) {
  int rc = in_data(c, w, addr, gaddr);
  if (rc != CLI_GO) return rc;
  if (wksp_part_find(w, gaddr, out)) return cli_lib_err(c, "looking up %s", addr);
  if (!out->tag) return cli_fail(c, "looking up %s: not inside an allocation", addr);
  return CLI_GO;
}

int cmd_alloc(cli_t *c) {
  const char *align_s = NULL, *tag_s = NULL;
  int json = 0;
  const cli_opt_t opts[] = {{"align", 0, CLI_OPT_ARG, &align_s, "N", "alignment, a power of two (default 4096)"},
                            {"tag", 0, CLI_OPT_ARG, &tag_s, "T", "tag of the allocation, 1..2^64-1 (default 1)"},
                            cli_opt_json(&json), cli_opt_end()};
  int rc = cli_parse(c, opts, 2, 2);
  if (rc != CLI_GO) return rc;
  const char *name = c->pos[0];
  uint64_t sz, align = 0, tag = 1, gaddr;
  if ((rc = cli_size(c, "SIZE", c->pos[1], &sz)) != CLI_GO) return rc;
  if (!sz) return cli_usage_err(c, "bad SIZE \"%s\": must be at least 1 byte", c->pos[1]);
  if (align_s && (rc = cli_size(c, "--align", align_s, &align)) != CLI_GO) return rc;
  if (tag_s && (rc = cli_tag(c, "--tag", tag_s, &tag)) != CLI_GO) return rc;
  wksp_t *w;
  if ((rc = cli_attach(c, name, 0, &w)) != CLI_GO) return rc;
  char addr[WKSP_ADDR_MAX];
  if (wksp_alloc(w, align, sz, tag, &gaddr))
    rc = cli_lib_err(c, "allocating %" PRIu64 " bytes in \"%s\"", sz, name);
  else if (wksp_addr_format(name, gaddr, addr, sizeof addr))
    rc = cli_lib_err(c, "formatting the address");
  else if (json) /* a valid name needs no JSON escape */
    rc = printf("{\"schema\":1,\"name\":\"%s\",\"gaddr\":%" PRIu64 ",\"addr\":\"%s\",\"size\":%" PRIu64
                ",\"align\":%" PRIu64 ","
                "\"tag\":%" PRIu64 "}\n",
                name, gaddr, addr, sz, (align ? align : WKSP_ALIGN_DEFAULT), tag) < 0
             ? CLI_FAIL
             : CLI_OK;
  else
    rc = printf("%s\n", addr) < 0 ? CLI_FAIL : CLI_OK;
  wksp_detach(w);
  return cli_flush(c, rc);
}

int cmd_free(cli_t *c) {
  int rc = cli_parse(c, NULL, 1, 1);
  if (rc != CLI_GO) return rc;
  wksp_t *w;
  uint64_t gaddr;
  if ((rc = attach_addr(c, c->pos[0], 0, &w, &gaddr)) != CLI_GO) return rc;
  rc = wksp_free(w, gaddr) ? cli_lib_err(c, "freeing %s", c->pos[0]) : CLI_OK;
  wksp_detach(w);
  return rc;
}

int cmd_tag(cli_t *c) {
  int json = 0;
  const cli_opt_t opts[] = {cli_opt_json(&json), cli_opt_end()};
  int rc = cli_parse(c, opts, 1, 1);
  if (rc != CLI_GO) return rc;
  wksp_t *w;
  uint64_t gaddr, tag;
  if ((rc = attach_addr(c, c->pos[0], WKSP_RDONLY, &w, &gaddr)) != CLI_GO) return rc;
  rc = in_data(c, w, c->pos[0], gaddr);
  if (rc == CLI_GO && wksp_tag(w, gaddr, &tag)) {
    rc = cli_lib_err(c, "looking up %s", c->pos[0]);
  } else if (rc == CLI_GO) {
    /* A valid workspace name needs no JSON escape. */
    if (json)
      printf("{\"schema\":1,\"name\":\"%s\",\"gaddr\":%" PRIu64 ",\"tag\":%" PRIu64 "}\n", wksp_name(w),
             gaddr, tag);
    else
      printf("%" PRIu64 "\n", tag);
    rc = CLI_OK;
  }
  wksp_detach(w);
  return cli_flush(c, rc);
}

/* Parses TAG arguments into a new array (freed by the caller). */
static int parse_tags(cli_t *c, const char *what, const char **v, int n, uint64_t **out) {
  *out = calloc((size_t)n + 1, sizeof **out);
  if (!*out) return cli_fail(c, "out of memory");
  for (int i = 0; i < n; i++) {
    int rc = cli_tag(c, what, v[i], &(*out)[i]);
    if (rc != CLI_GO) return rc;
  }
  return CLI_GO;
}

int cmd_tag_free(cli_t *c) {
  int rc = cli_parse(c, NULL, 2, c->argc);
  if (rc != CLI_GO) return rc;
  uint64_t *tags = NULL;
  wksp_t *w = NULL;
  const char *name = c->pos[0];
  if ((rc = parse_tags(c, "TAG", (const char **)c->pos + 1, c->npos - 1, &tags)) != CLI_GO) goto done;
  if ((rc = cli_attach(c, name, 0, &w)) != CLI_GO) goto done;
  rc = wksp_tag_free(w, tags, (size_t)c->npos - 1) ? cli_lib_err(c, "freeing tagged allocations in \"%s\"", name)
                                                   : CLI_OK;
  wksp_detach(w);
done:
  free(tags);
  return rc;
}

int cmd_memset(cli_t *c) {
  int rc = cli_parse(c, NULL, 2, 2);
  if (rc != CLI_GO) return rc;
  uint64_t gaddr, byte;
  if ((rc = cli_u64(c, "BYTE", c->pos[1], &byte)) != CLI_GO) return rc;
  if (byte > 255) return cli_usage_err(c, "bad BYTE \"%s\": must be 0..255", c->pos[1]);
  wksp_t *w;
  if ((rc = attach_addr(c, c->pos[0], 0, &w, &gaddr)) != CLI_GO) return rc;
  rc = wksp_memset(w, gaddr, (int)byte) ? cli_lib_err(c, "filling %s", c->pos[0]) : CLI_OK;
  wksp_detach(w);
  return rc;
}

/* Opens FILE for reading or writing, "-" (or none) meaning stdin/stdout. */
static int open_io(cli_t *c, const char *path, int out, int *fd) {
  if (!path || !strcmp(path, "-")) {
    *fd = out ? 1 : 0;
    return CLI_GO;
  }
  *fd = out ? open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666) : open(path, O_RDONLY | O_CLOEXEC);
  if (*fd < 0) return cli_os_err(c, errno, "opening \"%s\"", path);
  return CLI_GO;
}

static void close_io(int fd) {
  if (fd > 2) close(fd);
}

/* Reads all of fd into a new buffer, failing once it holds more than max
 * bytes (*sz = max + 1 then).  *buf is freed by the caller. */
static int slurp(int fd, uint64_t max, unsigned char **buf, uint64_t *sz) {
  uint64_t cap = 0;
  *buf = NULL;
  *sz = 0;
  for (;;) {
    if (*sz == cap) {
      if (cap > max) return 0;
      uint64_t want = cap ? cap * 2 : 65536;
      if (want > max + 1) want = max + 1;
      unsigned char *p = realloc(*buf, want);
      if (!p) return ENOMEM;
      *buf = p;
      cap = want;
    }
    ssize_t n = read(fd, *buf + *sz, cap - *sz);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno;
    if (n == 0) return 0;
    *sz += (uint64_t)n;
  }
}

int cmd_write(cli_t *c) {
  int rc = cli_parse(c, NULL, 1, 2);
  if (rc != CLI_GO) return rc;
  const char *addr = c->pos[0], *path = c->npos > 1 ? c->pos[1] : "-";
  wksp_t *w = NULL;
  uint64_t gaddr, sz;
  unsigned char *buf = NULL;
  int fd = -1;
  wksp_part_t p;
  if ((rc = attach_addr(c, addr, 0, &w, &gaddr)) != CLI_GO) return rc;
  if ((rc = find_alloc(c, w, addr, gaddr, &p)) != CLI_GO) goto done;
  if ((rc = open_io(c, path, 0, &fd)) != CLI_GO) goto done;
  /* All input is read before anything is written, so too much input
   * leaves the allocation untouched. */
  uint64_t room = p.gaddr_hi - gaddr;
  int e = slurp(fd, room, &buf, &sz);
  if (e) {
    rc = cli_os_err(c, e, "reading \"%s\"", path);
    goto done;
  }
  if (sz > room) {
    rc = cli_fail(c,
                  "writing to %s: input \"%s\" is longer than the %" PRIu64 " bytes from %" PRIu64
                  " to the end of the allocation",
                  addr, path, room, gaddr);
    goto done;
  }
  if (sz) memcpy(wksp_laddr(w, gaddr), buf, sz);
  rc = CLI_OK;
done:
  close_io(fd);
  free(buf);
  wksp_detach(w);
  return rc;
}

/* Writes [p, p+sz) to fd. */
static int write_all(int fd, const unsigned char *p, uint64_t sz) {
  while (sz) {
    ssize_t n = write(fd, p, sz < (1u << 30) ? sz : (1u << 30));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno;
    p += n;
    sz -= (uint64_t)n;
  }
  return 0;
}

int cmd_read(cli_t *c) {
  int rc = cli_parse(c, NULL, 1, 2);
  if (rc != CLI_GO) return rc;
  const char *addr = c->pos[0], *path = c->npos > 1 ? c->pos[1] : "-";
  wksp_t *w = NULL;
  uint64_t gaddr;
  int fd = -1;
  wksp_part_t p;
  if ((rc = attach_addr(c, addr, WKSP_RDONLY, &w, &gaddr)) != CLI_GO) return rc;
  if ((rc = find_alloc(c, w, addr, gaddr, &p)) != CLI_GO) goto done;
  if ((rc = open_io(c, path, 1, &fd)) != CLI_GO) goto done;
  int e = write_all(fd, wksp_laddr(w, p.gaddr_lo), p.gaddr_hi - p.gaddr_lo);
  if (fd > 2) {
    /* close() is where a full disk or quota may be reported. */
    if (close(fd) && !e) e = errno;
    fd = -1;
  }
  rc = e ? cli_os_err(c, e, "writing %s to \"%s\"", addr, path) : CLI_OK;
done:
  close_io(fd);
  wksp_detach(w);
  return rc;
}

/* 1 - largest free / free bytes, in tenths of a percent (rounded down), 0
 * without free space: how much of the free space a single allocation
 * cannot reach. */
static unsigned frag_permille(const wksp_usage_t *u) {
  if (!u->free_sz) return 0;
  return (unsigned)((unsigned __int128)(u->free_sz - u->free_max) * 1000 / u->free_sz);
}

static void print_usage_json(const char *name, const uint64_t *tags, int ntags, const wksp_usage_t *u) {
  printf("{\"schema\":1,\"name\":");
  cli_json_str(stdout, name);
  printf(",\"tags\":[");
  for (int i = 0; i < ntags; i++)
    printf("%s%" PRIu64, i ? "," : "", tags[i]);
  printf("],\"total_max\":%" PRIu64 ",\"total_cnt\":%" PRIu64 ",\"total_sz\":%" PRIu64
         ",\"free_cnt\":%" PRIu64 ",\"free_sz\":%" PRIu64 ","
         "\"used_cnt\":%" PRIu64 ",\"used_sz\":%" PRIu64 ",\"free_max\":%" PRIu64 ",\"records_left\":%" PRIu64
         ",\"fragmentation\":%.6f}\n",
         u->total_max, u->total_cnt, u->total_sz, u->free_cnt, u->free_sz, u->used_cnt, u->used_sz,
         u->free_max, (u->total_max - u->total_cnt),
         u->free_sz ? (double)(u->free_sz - u->free_max) / (double)u->free_sz : 0.0);
}

static void print_usage_text(const char *name, const uint64_t *tags, int ntags, const wksp_usage_t *u,
                             int bytes) {
  char h[CLI_HUMAN_MAX], hm[CLI_HUMAN_MAX];
  unsigned frag = frag_permille(u);
  printf("workspace     %s\n", name);
  printf("partitions    %" PRIu64 " of %" PRIu64 " records in use%s\n", u->total_cnt, u->total_max,
         u->total_cnt < u->total_max ? "" : "; none left, so an allocation takes a whole free range");
  printf("data          %s\n", cli_human(u->total_sz, bytes, h));
  printf("free          %s in %" PRIu64 " partition%s", cli_human(u->free_sz, bytes, h), u->free_cnt,
         u->free_cnt == 1 ? "" : "s");
  printf(u->free_cnt ? ", largest %s\n" : "\n", cli_human(u->free_max, bytes, hm));
  printf("fragmentation %u.%u%%\n", frag / 10, frag % 10);
  printf("used          %s in %" PRIu64 " allocation%s", cli_human(u->used_sz, bytes, h), u->used_cnt,
         u->used_cnt == 1 ? "" : "s");
  for (int i = 0; i < ntags; i++)
    printf("%s%" PRIu64, i ? ", " : ntags == 1 ? " with tag " : " with tags ", tags[i]);
  printf("\n");
}

int cmd_usage(cli_t *c) {
  int json = 0, bytes = 0;
  cli_list_t tag_l;
  const cli_opt_t opts[] = {{"tag", 0, CLI_OPT_LIST, &tag_l, "T", "count only allocations with tag T (repeatable)"},
                            cli_opt_json(&json), cli_opt_bytes(&bytes), cli_opt_end()};
  int rc = cli_parse(c, opts, 1, 1);
  if (rc != CLI_GO) return rc;
  const char *name = c->pos[0];
  uint64_t *tags = NULL;
  wksp_t *w = NULL;
  wksp_usage_t u;
  if ((rc = parse_tags(c, "--tag", tag_l.v, tag_l.n, &tags)) != CLI_GO) goto done;
  if ((rc = cli_attach(c, name, WKSP_RDONLY, &w)) != CLI_GO) goto done;
  if (wksp_usage(w, tags, (size_t)tag_l.n, &u)) {
    rc = cli_lib_err(c, "reading usage of \"%s\"", name);
  } else {
    if (json) print_usage_json(name, tags, tag_l.n, &u);
    else print_usage_text(name, tags, tag_l.n, &u, bytes);
    rc = CLI_OK;
  }
  wksp_detach(w);
done:
  free(tags);
  return cli_flush(c, rc);
}

int cli_list_parts(cli_t *c, wksp_t *w, wksp_part_t **parts, size_t *cnt) {
  size_t max = 0;
  *parts = NULL;
  for (;;) {
    if (wksp_part_list(w, *parts, max, cnt)) return cli_lib_err(c, "listing partitions of \"%s\"", wksp_name(w));
    if (*cnt <= max) return CLI_GO;
    free(*parts);
    max = *cnt + 16;
    *parts = malloc(max * sizeof **parts);
    if (!*parts) return cli_fail(c, "listing partitions of \"%s\": out of memory", wksp_name(w));
  }
}

static void print_query_json(wksp_t *w, const wksp_part_t *parts, size_t cnt) {
  printf("{\"schema\":1,\"name\":");
  cli_json_str(stdout, wksp_name(w));
  printf(",\"seed\":%u,\"part_max\":%" PRIu64 ",\"data_max\":%" PRIu64 ",\"gaddr_lo\":%" PRIu64
         ",\"gaddr_hi\":%" PRIu64 ",\"partitions\":[",
         (unsigned)wksp_seed(w), wksp_part_max(w), wksp_data_max(w), wksp_gaddr_lo(w), wksp_gaddr_hi(w));
  for (size_t i = 0; i < cnt; i++)
    printf("%s{\"gaddr_lo\":%" PRIu64 ",\"gaddr_hi\":%" PRIu64 ",\"tag\":%" PRIu64 "}", i ? "," : "",
           parts[i].gaddr_lo, parts[i].gaddr_hi, parts[i].tag);
  printf("]}\n");
}

static void print_query_text(wksp_t *w, const wksp_part_t *parts, size_t cnt, int bytes) {
  char h[CLI_HUMAN_MAX];
  printf("workspace %s: seed %u, part_max %" PRIu64 ", data_max %s, data [%" PRIu64 ", %" PRIu64 ")\n",
         wksp_name(w), (unsigned)wksp_seed(w), wksp_part_max(w), cli_human(wksp_data_max(w), bytes, h),
         wksp_gaddr_lo(w), wksp_gaddr_hi(w));
  printf("%20s %20s %12s %20s\n", "GADDR_LO", "GADDR_HI", "SIZE", "TAG (0 = free)");
  for (size_t i = 0; i < cnt; i++)
    printf("%20" PRIu64 " %20" PRIu64 " %12s %20" PRIu64 "\n", parts[i].gaddr_lo,
           parts[i].gaddr_hi, cli_human(parts[i].gaddr_hi - parts[i].gaddr_lo, bytes, h),
           parts[i].tag);
}

int cmd_query(cli_t *c) {
  int json = 0, bytes = 0;
  const cli_opt_t opts[] = {cli_opt_json(&json), cli_opt_bytes(&bytes), cli_opt_end()};
  int rc = cli_parse(c, opts, 1, 1);
  if (rc != CLI_GO) return rc;
  wksp_t *w;
  wksp_part_t *parts = NULL;
  size_t cnt = 0;
  if ((rc = cli_attach(c, c->pos[0], WKSP_RDONLY, &w)) != CLI_GO) return rc;
  if ((rc = cli_list_parts(c, w, &parts, &cnt)) == CLI_GO) {
    if (json) print_query_json(w, parts, cnt);
    else print_query_text(w, parts, cnt, bytes);
    rc = CLI_OK;
  }
  free(parts);
  wksp_detach(w);
  return cli_flush(c, rc);
}
