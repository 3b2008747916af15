/* Human-readable listing of a checkpoint (docs/FORMAT.md 7), with the levels the
 * reference leaves empty for v2 implemented: 3 summary, 4 allocations, 5
 * hex dump. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "checkpt_private.h"
#include "delta_private.h"
#include "util/err.h"
#include "util/esc.h"

/* Output is gathered in buf and written when full and at the end: a
 * listing is one line per allocation (or per 16 bytes at level 5), and a
 * write (with dprintf, also an fstat, an ioctl and an lseek) per line made
 * printing a large checkpoint system-call bound. */
typedef struct {
  int fd;
  int bad;        /* errno of the first failed write, or 0 */
  size_t len;     /* bytes waiting in buf */
  char buf[8192];
} out_t;

static void out_write(out_t *o, const char *p, size_t n) {
  while (n && !o->bad) {
    ssize_t k = write(o->fd, p, n);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) {
      o->bad = k < 0 && errno ? errno : EIO;
      break;
    }
    p += k;
    n -= (size_t)k;
  }
}

static void out_flush(out_t *o) {
  out_write(o, o->buf, o->len);
  o->len = 0;
}

__attribute__((format(printf, 2, 3))) static void out(out_t *o, const char *fmt, ...) {
  if (o->bad) return;
  va_list ap, again;
  va_start(ap, fmt);
  va_copy(again, ap);
  size_t room = sizeof o->buf - o->len;
  int n = vsnprintf(o->buf + o->len, room, fmt, ap);
  if (n < 0) {
    o->bad = EINVAL;
  } else if ((size_t)n < room) {
    o->len += (size_t)n;
  } else { /* did not fit: make room, or write a long line on its own */
    out_flush(o);
    char *t = (size_t)n < sizeof o->buf ? o->buf : malloc((size_t)n + 1);
    if (!t) {
      o->bad = ENOMEM;
    } else {
      vsnprintf(t, (size_t)n + 1, fmt, again);
      if (t == o->buf) o->len = (size_t)n;
      else out_write(o, t, (size_t)n);
      if (t != o->buf) free(t);
    }
  }
  va_end(again);
  va_end(ap);
}

/* Appends s[0..n) escaped (util/esc.h): the strings of a checkpoint are
 * whatever its writer put there, and printed raw they could drive the
 * terminal. */
static void out_esc(out_t *o, const char *s, size_t n, wksp_esc_t style) {
  for (size_t at = 0; at < n && !o->bad;) {
    char unit[WKSP_ESC_UNIT_MAX];
    size_t len;
    at += wksp_private_esc_unit(s + at, n - at, style, unit, &len);
    if (o->len + len > sizeof o->buf) out_flush(o);
    memcpy(o->buf + o->len, unit, len);
    o->len += len;
  }
}

/* "\t<label><value>\n" with the value escaped. */
static void out_field(out_t *o, const char *label, const char *value) {
  out(o, "\t%s", label);
  out_esc(o, value, strlen(value), WKSP_ESC_C);
  out(o, "\n");
}

static void print_preview(out_t *o, const wksp_preview_t *pv) {
  out(o, "\tstyle    %d\n\tname     %s\n\tseed     %u\n\tpart_max %" PRIu64 "\n\tdata_max %" PRIu64 "\n",
      pv->style, pv->name, (unsigned)pv->seed, pv->part_max, pv->data_max);
}

/* Prints a text field that may hold newlines (binfo): one indented line
 * per line of the text, each escaped. */
static void print_text(out_t *o, const char *label, const char *s) {
  out(o, "\t%-8s", label);
  if (!*s) out(o, " \"\"\n");
  const char *p = s;
  int first = 1;
  while (*p) {
    const char *e = strchr(p, '\n');
    size_t n = e ? (size_t)(e - p) : strlen(p);
    out(o, "%s", first ? " " : "\t\t ");
    out_esc(o, p, n, WKSP_ESC_C);
    out(o, "\n");
    first = 0;
    p += n + (e != NULL);
  }
}

/* "\t<label>   <id> (<name>)\n" with the name escaped. */
static void print_id(out_t *o, const char *label, uint64_t id, const char *name) {
  out(o, "\t%-9s %" PRIu64 " (", label, id);
  out_esc(o, name, strlen(name), WKSP_ESC_C);
  out(o, ")\n");
}

/* A failure message quotes paths and may quote file contents. */
static void print_invalid(out_t *o, const char *what) {
  const char *msg = wksp_errmsg();
  out(o, "\t%s (", what);
  out_esc(o, msg, strlen(msg), WKSP_ESC_LINE);
  out(o, ")\n");
}

static void print_ident(out_t *o, const wksp_checkpt_info_t *I) {
  char when[64] = "?";
  time_t sec = (time_t)(I->wallclock / 1000000000);
  struct tm tm;
  if (gmtime_r(&sec, &tm)) strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S UTC", &tm);
  out(o, "\tmagic     0x%016" PRIx64 "\n", (uint64_t)CHECKPT_MAGIC);
  out(o, "\twallclock %" PRId64 " (%s)\n", I->wallclock, when);
  print_id(o, "app", I->app_id, I->app);
  print_id(o, "thread", I->thread_id, I->thread);
  print_id(o, "host", I->host_id, I->host);
  print_id(o, "cpu", I->cpu_id, I->cpu);
  print_id(o, "group", I->group_id, I->group);
  out(o, "\ttid       %" PRIu64 "\n", I->tid);
  print_id(o, "user", I->user_id, I->user);
  if (I->pv.style == 2)
    out(o, "\tframe_style_compressed %d (%s)\n", I->pv.frame_style,
        I->pv.frame_style == 2 ? "lz4" : "raw");
}

static void print_summary(out_t *o, const wksp_checkpt_info_t *I) {
  uint64_t lo = checkpt_gaddr_lo(I->pv.part_max);
  out(o, "\tfile size   %" PRIu64 " bytes\n", I->file_sz);
  out(o, "\tallocations %" PRIu64 ", %" PRIu64 " bytes (%.2f%% of data_max)\n", I->alloc_cnt, I->alloc_sz,
      I->pv.data_max ? 100.0 * (double)I->alloc_sz / (double)I->pv.data_max : 0.0);
  uint64_t largest = 0;
  for (uint64_t k = 0; k < I->alloc_cnt; k++) {
    uint64_t sz = I->parts[k].gaddr_hi - I->parts[k].gaddr_lo;
    if (sz > largest) largest = sz;
  }
  out(o, "\tlargest     %" PRIu64 " bytes\n\tsource data region [%" PRIu64 ",%" PRIu64 ")\n", largest, lo,
      (lo + I->pv.data_max));
  if (I->pv.style != 2) return;
  out(o, "\tcgroups     %" PRIu64 ", volumes %" PRIu64 "\n", I->cgroup_cnt, I->volume_cnt);
  for (uint64_t g = 0; g < I->cgroup_cnt; g++) {
    const wksp_checkpt_cgroup_t *c = &I->cgroups[g];
    uint64_t fsz = c->end - c->off;
    out(o,
        "\t\tcgroup %4" PRIu64 " at %12" PRIu64 ": %6" PRIu64 " allocations, %12" PRIu64 " bytes -> %12" PRIu64 " in file (ratio "
        "%.3f)\n",
        g, c->off, c->alloc_cnt,
        c->data_sz, fsz,
        fsz ? (double)c->data_sz / (double)fsz : 0.0);
  }
}

static void print_allocs(out_t *o, const wksp_checkpt_info_t *I) {
  for (uint64_t k = 0; k < I->alloc_cnt; k++) {
    const wksp_part_t *p = &I->parts[k];
    out(o, "\t\tpartition [%" PRIu64 ",%" PRIu64 ") sz %" PRIu64 " tag %" PRIu64 "\n", p->gaddr_lo,
        p->gaddr_hi, (p->gaddr_hi - p->gaddr_lo), p->tag);
  }
}

/* ---- level 5: hex dump ------------------------------------------------------------ */

typedef struct {
  out_t *o;
  uint8_t *buf;
} dump_t;

static void *dump_dest(void *ctx, const wksp_part_t *p) {
  (void)p;
  return ((dump_t *)ctx)->buf;
}

static int dump_done(void *ctx, const wksp_part_t *p, const void *bytes) {
  out_t *o = ((dump_t *)ctx)->o;
  const uint8_t *b = bytes;
  uint64_t sz = p->gaddr_hi - p->gaddr_lo;
  out(o, "\t\tpartition [%" PRIu64 ",%" PRIu64 ") tag %" PRIu64 "\n", p->gaddr_lo, p->gaddr_hi, p->tag);
  for (uint64_t at = 0; at < sz && !o->bad; at += 16) {
    char hex[16 * 3 + 1] = "", asc[17] = "";
    uint64_t n = sz - at < 16 ? sz - at : 16;
    static const char digit[] = "0123456789abcdef";
    for (uint64_t i = 0; i < n; i++) {
      hex[3 * i] = digit[b[at + i] >> 4];
      hex[3 * i + 1] = digit[b[at + i] & 15];
      hex[3 * i + 2] = ' ';
      hex[3 * i + 3] = 0;
      asc[i] = b[at + i] >= 32 && b[at + i] < 127 ? (char)b[at + i] : '.';
    }
    asc[n] = 0;
    out(o, "\t\t%016" PRIx64 ": %-48s |%s|\n", (p->gaddr_lo + at), hex, asc);
  }
  return o->bad ? wksp_err(WKSP_ERR_FAIL, o->bad, "print: write") : WKSP_SUCCESS;
}

static int print_dump(out_t *o, const checkpt_input_t *in, const checkpt_scan_t *s) {
  uint64_t largest = 1;
  for (uint64_t k = 0; k < s->info.alloc_cnt; k++) {
    uint64_t sz = s->info.parts[k].gaddr_hi - s->info.parts[k].gaddr_lo;
    if (sz > largest) largest = sz;
  }
  dump_t d = {.o = o, .buf = malloc(largest)};
  if (!d.buf)
    return wksp_err(WKSP_ERR_NOMEM, 0, "print: %" PRIu64 "-byte buffer", largest);
  int rc = wksp_private_checkpt_data_run(in, s, 1, dump_dest, dump_done, &d, NULL);
  free(d.buf);
  return rc;
}

/* ---- deltas and indexes (docs/FORMAT.md 13): their metadata, checked -------------- */


static void print_delta_file(out_t *o, const delta_file_t *df, int verbose) {
  const delta_hdr_t *h = &df->h;
  out(o, "\tkind     %s\n\tversion  %u\n\tname     ", df->kind == WKSP_FILE_DELTA ? "delta" : "index",
      (unsigned)h->version);
  out_esc(o, h->name, strnlen(h->name, sizeof h->name), WKSP_ESC_C);
  out(o, "\n\tseed     %u\n\tpart_max %" PRIu64 "\n\tdata_max %" PRIu64 "\n", (unsigned)h->seed, h->part_max,
      h->data_max);
  if (verbose < 1) return;
  out(o,
      "\twallclock   %" PRId64 "\n\tbase digest %016" PRIx64 "\n\tdigest      %016" PRIx64
      "\n\tpiece style %u (%s)\n",
      h->wallclock, h->base_digest, df->f.digest, (unsigned)h->piece_style,
      h->piece_style == 2 ? "lz4" : "raw");
  out(o, "\tflags       %u%s\n", (unsigned)h->flags, h->flags & DELTA_FLAG_VERIFIED ? " (verified)" : "");
  if (verbose >= 2) {
    out_field(o, "hint      ", df->hint);
    print_text(o, "uinfo", df->uinfo);
  }
  if (verbose < 3) return;
  out(o, "\tallocations %" PRIu64 ", %" PRIu64 " bytes (table %" PRIu64 " bytes)\n", h->alloc_cnt,
      df->data_sz, 24 * h->alloc_cnt);
  out(o, "\tpieces      %" PRIu64 ", changed %" PRIu64 " (%" PRIu64 " bytes, %" PRIu64 " in file)\n",
      h->piece_cnt, df->f.changed_cnt, df->f.changed_sz, df->f.index_off - df->f.pieces_off);
  out(o, "\tfile size   %" PRIu64 " bytes\n", df->f.file_sz);
  for (uint64_t k = 0; verbose >= 4 && k < h->alloc_cnt; k++) {
    uint64_t changed = 0;
    for (uint64_t i = df->pstart[k]; i < df->pstart[k + 1]; i++) changed += df->bits[i / 64] >> (i % 64) & 1;
    const wksp_part_t *p = &df->parts[k];
    out(o, "\t\t[%" PRIu64 ",%" PRIu64 ") tag %" PRIu64 ": %" PRIu64 " of %" PRIu64 " pieces changed\n",
        p->gaddr_lo, p->gaddr_hi, p->tag, changed, df->pstart[k + 1] - df->pstart[k]);
  }
}

/* A delta's or index's metadata, every rule of 13.2 but the pieces' bytes checked. */
static int print_delta(out_t *o, const checkpt_input_t *in, int verbose) {
  delta_file_t df;
  int rc = wksp_private_delta_open(&df, in);
  if (rc) {
    print_invalid(o, "invalid or unsupported");
    return rc;
  }
  print_delta_file(o, &df, verbose);
  wksp_private_delta_fini(&df);
  return WKSP_SUCCESS;
}

/* ---- entry points -------------------------------------------------------------------- */

static int print_input(out_t *o, checkpt_input_t *in, int verbose) {
  wksp_preview_t pv;
  uint8_t head[CHECKPT_PREVIEW_MAX];
  uint64_t n = in->sz < CHECKPT_PREVIEW_MAX ? in->sz : CHECKPT_PREVIEW_MAX;
  int rc = n >= 12 ? wksp_private_checkpt_input_read(in, head, n, 0)
                   : wksp_err(WKSP_ERR_FAIL, 0, "%s: only %" PRIu64 " bytes", in->label, n);
  if (!rc && delta_magic_any(checkpt_ld64(head))) return print_delta(o, in, verbose);
  if (!rc) rc = wksp_private_checkpt_preview_any(head, n, &pv, in->label);
  if (rc) {
    print_invalid(o, "invalid or unsupported");
    return rc;
  }
  if (verbose < 1) {
    print_preview(o, &pv);
    return WKSP_SUCCESS;
  }
  checkpt_scan_t s;
  rc = wksp_private_checkpt_scan(&s, in);
  if (rc) {
    print_preview(o, &pv);
    print_invalid(o, "invalid or unsupported");
    return rc;
  }
  const wksp_checkpt_info_t *I = &s.info;
  print_preview(o, &I->pv);
  print_ident(o, I);
  if (verbose >= 2) {
    if (I->pv.style == 2) {
      out(o, "\tmode      0%" PRIo64 "\n", I->mode);
      out_field(o, "path      ", I->path);
    }
    print_text(o, "binfo", I->binfo);
    print_text(o, "uinfo", I->uinfo);
  }
  if (verbose >= 3) print_summary(o, I);
  if (verbose >= 4 && verbose < 5) print_allocs(o, I);
  if (verbose >= 5) {
    rc = print_dump(o, in, &s);
    if (rc) print_invalid(o, "invalid data");
  }
  wksp_private_checkpt_scan_fini(&s);
  return rc;
}

static int print_any(int out_fd, const char *path, int in_fd, const char *label, int verbose) {
  if (verbose < 0) return WKSP_SUCCESS;
  out_t o; /* not zero-initialized: buf needs no clearing */
  o.fd = out_fd;
  o.bad = 0;
  o.len = 0;
  out(&o, "checkpt ");
  out_esc(&o, label, strlen(label), WKSP_ESC_C);
  out(&o, " (verbose %d)\n", verbose);
  checkpt_input_t in;
  int rc = wksp_private_checkpt_input_open(&in, path, in_fd, label, CHECKPT_IN_NEED_MEM);
  if (rc) print_invalid(&o, "invalid or unsupported");
  else {
    rc = print_input(&o, &in, verbose);
    wksp_private_checkpt_input_fini(&in);
  }
  out_flush(&o);
  if (o.bad) return wksp_err(WKSP_ERR_FAIL, o.bad, "print: write to fd %d", out_fd);
  return rc;
}

int wksp_checkpt_print(int out_fd, const char *path, int verbose) {
  if (!path) return wksp_err(WKSP_ERR_INVAL, 0, "wksp_checkpt_print: NULL path");
  return print_any(out_fd, path, -1, path, verbose);
}

int wksp_checkpt_print_fd(int out_fd, int in_fd, const char *label, int verbose) {
  if (in_fd < 0) return wksp_err(WKSP_ERR_INVAL, 0, "wksp_checkpt_print_fd: bad fd");
  return print_any(out_fd, NULL, in_fd, label ? label : "-", verbose);
}
