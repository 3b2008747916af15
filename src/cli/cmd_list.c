/* wksp list: every named region, which of them hold a workspace, how full
 * each is, how old, and which processes map it.
 *
 * Everything is gathered before anything is printed (a failure prints no
 * partial listing).  The /proc scan runs first, before this process maps
 * any region, so it never lists itself.  Each region is then attached
 * read-only: queries on a read-only attachment never take the workspace
 * lock and write nothing, so a list neither blocks on a held lock nor
 * repairs (changes) a workspace a dead process left behind; it reports it. */
#include "cli.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum { KIND_WKSP, KIND_OTHER, KIND_UNREADABLE, KIND_ERROR };

typedef struct {
  wksp_shmem_info_t r;
  int kind;
  char why[512];    /* what the library said when the region could not be examined */
  int usage_ok;     /* workspace: u holds figures (else why says why not) */
  wksp_usage_t u;
  wksp_lock_info_t lock;
  const wksp_shmem_map_t *maps; /* processes mapping it: its run of list_t's scan */
  size_t nmaps;
} row_t;

typedef struct {
  row_t *v;
  size_t n, cap;
  wksp_shmem_map_t *maps; /* the /proc scan (NULL with maps_ok 0) */
  size_t nmaps, maps_cap;
  int maps_ok;            /* the scan ran */
  uint64_t unreadable;    /* processes whose maps could not be read */
  int oom;
} list_t;

static int grow(void **v, size_t *cap, size_t n, size_t elem) {
  if (n < *cap) return 0;
  size_t c = *cap ? 2 * *cap : 64;
  void *p = realloc(*v, c * elem);
  if (!p) return 1;
  *v = p;
  *cap = c;
  return 0;
}

static int region_cb(const wksp_shmem_info_t *info, void *arg) {
  list_t *l = arg;
  if (grow((void **)&l->v, &l->cap, l->n, sizeof *l->v)) return l->oom = 1;
  l->v[l->n++] = (row_t){.r = *info};
  return 0;
}

static int map_cb(const wksp_shmem_map_t *m, void *arg) {
  list_t *l = arg;
  if (grow((void **)&l->maps, &l->maps_cap, l->nmaps, sizeof *l->maps)) return l->oom = 1;
  l->maps[l->nmaps++] = *m;
  return 0;
}

/* The order both the regions and the scan come in (wksp/shmem.h): by
 * name, then page kind. */
static int region_cmp(const wksp_shmem_map_t *m, const wksp_shmem_info_t *r) {
  int c = strcmp(m->name, r->name);
  return c ? c : (int)m->page - (int)r->page;
}

/* Points each row at the scan's entries for its region, which are
 * contiguous: one merge of the two sorted lists (a region in only one of
 * them, created or deleted between the two listings, just has none). */
static void rows_maps(list_t *l) {
  size_t j = 0;
  for (size_t i = 0; i < l->n; i++) {
    row_t *r = &l->v[i];
    while (j < l->nmaps && region_cmp(&l->maps[j], &r->r) < 0) j++;
    r->maps = l->maps ? &l->maps[j] : NULL; /* no process maps anything: no scan array */
    while (j < l->nmaps && !region_cmp(&l->maps[j], &r->r)) j++, r->nmaps++;
  }
}

static void note(row_t *r, const char *why) { snprintf(r->why, sizeof r->why, "%s", why); }

/* Attaches r's region read-only and reads its figures.  Returns 0 when the
 * region is gone (deleted since it was listed): it is then left out. */
static int row_examine(row_t *r) {
  wksp_t *w;
  int rc = wksp_attach(r->r.name, WKSP_RDONLY, &w);
  if (rc == WKSP_ERR_NOENT) return 0;
  if (rc) {
    r->kind = rc == WKSP_ERR_CORRUPT ? KIND_OTHER : rc == WKSP_ERR_PERM ? KIND_UNREADABLE : KIND_ERROR;
    note(r, wksp_errcause());
    return 1;
  }
  r->kind = KIND_WKSP;
  r->usage_ok = !wksp_usage(w, NULL, 0, &r->u);
  if (!r->usage_ok) note(r, wksp_errcause());
  if (wksp_lock_info(w, &r->lock)) r->lock.state = WKSP_LOCK_UNKNOWN;
  wksp_detach(w);
  return 1;
}

static void rows_free(list_t *l) {
  free(l->v);
  free(l->maps);
}

/* Regions, the /proc scan, then each region's contents; rows that vanished
 * or (unused) are mapped are dropped. */
static int gather(cli_t *c, list_t *l, int unused) {
  int err = wksp_shmem_list(region_cb, l);
  if (l->oom) return cli_fail(c, "listing regions: out of memory");
  if (err) return cli_lib_err(c, "listing regions");
  err = wksp_shmem_maps(map_cb, l, &l->unreadable);
  if (l->oom) return cli_fail(c, "finding the processes that map regions: out of memory");
  l->maps_ok = !err;
  if (err && unused) return cli_lib_err(c, "--unused: finding the processes that map regions");
  rows_maps(l);
  size_t keep = 0;
  for (size_t i = 0; i < l->n; i++) {
    row_t r = l->v[i];
    if (row_examine(&r) && !(unused && (r.kind != KIND_WKSP || r.nmaps))) l->v[keep++] = r;
  }
  l->n = keep; /* rows past it were dropped or moved down */
  return CLI_GO;
}

/* ---- JSON ------------------------------------------------------------------ */

static const char *lock_state_name(int state) {
  switch (state) {
  case WKSP_LOCK_FREE: return "free";
  case WKSP_LOCK_HELD: return "held";
  case WKSP_LOCK_DEAD: return "dead";
  case WKSP_LOCK_BROKEN: return "broken";
  default: return "unknown";
  }
}

static void json_row(const row_t *r, int maps_ok) {
  printf("{\"name\":");
  cli_json_str(stdout, r->r.name);
  printf(",\"size\":%" PRIu64 ",\"page\":\"%s\",\"mode\":\"%04o\",\"mtime\":%" PRId64 ",\"btime\":", r->r.sz,
         cli_page_name(r->r.page), (unsigned)r->r.mode, r->r.mtime);
  if (r->r.btime)
    printf("%" PRId64, r->r.btime);
  else printf("null");
  printf(",\"mapped_by\":");
  if (maps_ok) {
    printf("[");
    for (size_t i = 0; i < r->nmaps; i++)
      printf("%s{\"pid\":%u,\"writable\":%s}", i ? "," : "", r->maps[i].pid, r->maps[i].writable ? "true" : "false");
    printf("]");
  } else {
    printf("null");
  }
  printf(",\"workspace\":%s", r->kind == KIND_WKSP ? "true" : r->kind == KIND_OTHER ? "false" : "null");
  if (r->kind == KIND_WKSP) {
    const wksp_usage_t *u = &r->u;
    printf(",\"usage\":");
    if (r->usage_ok)
      printf("{\"total_max\":%" PRIu64 ",\"total_cnt\":%" PRIu64 ",\"total_sz\":%" PRIu64
             ",\"free_cnt\":%" PRIu64 ",\"free_sz\":%" PRIu64 ","
             "\"free_max\":%" PRIu64 ",\"used_cnt\":%" PRIu64 ",\"used_sz\":%" PRIu64 "}",
             u->total_max, u->total_cnt, u->total_sz, u->free_cnt, u->free_sz, u->free_max, u->used_cnt,
             u->used_sz);
    else
      printf("null");
    printf(",\"lock\":{\"state\":\"%s\",\"tid\":%u,\"writing\":%s}", lock_state_name(r->lock.state), r->lock.tid,
           r->lock.writing ? "true" : "false");
  }
  if (r->why[0]) {
    printf(",\"error\":");
    cli_json_str(stdout, r->why);
  }
  printf("}");
}

static void print_json(const list_t *l) {
  printf("{\"schema\":1,\"regions\":[");
  for (size_t i = 0; i < l->n; i++) {
    if (i) printf(",");
    json_row(&l->v[i], l->maps_ok);
  }
  printf("],\"maps_unreadable\":");
  if (l->maps_ok)
    printf("%" PRIu64 "}\n", l->unreadable);
  else printf("null}\n");
}

/* ---- text ------------------------------------------------------------------ */

enum { COL_CNT = 11, CELL_MAX = 96 };

static const char *const col_head[COL_CNT] = {"NAME",    "SIZE",   "PAGE",         "MODE",      "CREATED", "MODIFIED",
                                              "USED",    "ALLOCS", "LARGEST FREE", "MAPPED BY", "NOTE"};
static const int col_right[COL_CNT] = {0, 1, 0, 0, 1, 1, 1, 1, 1, 0, 0};

/* "42s", "5m", "3h", "12d": time since t (ns since the epoch); "?" for 0. */
static void age(char out[CELL_MAX], int64_t t, int64_t now) {
  if (!t) {
    snprintf(out, CELL_MAX, "?");
    return;
  }
  int64_t s = now > t ? (now - t) / 1000000000 : 0;
  if (s < 120)
    snprintf(out, CELL_MAX, "%" PRId64 "s", s);
  else if (s < 2 * 3600)
    snprintf(out, CELL_MAX, "%" PRId64 "m", (s / 60));
  else if (s < 2 * 86400)
    snprintf(out, CELL_MAX, "%" PRId64 "h", (s / 3600));
  else
    snprintf(out, CELL_MAX, "%" PRId64 "d", (s / 86400));
}

static void mappers(char out[CELL_MAX], const row_t *r, int maps_ok) {
  size_t o = 0;
  out[0] = 0;
  if (!maps_ok) snprintf(out, CELL_MAX, "?");
  else if (!r->nmaps) snprintf(out, CELL_MAX, "-");
  for (size_t i = 0; maps_ok && i < r->nmaps && o < CELL_MAX; i++) {
    int k = snprintf(out + o, CELL_MAX - o, "%s%u%s", i ? "," : "", r->maps[i].pid, r->maps[i].writable ? "" : "(ro)");
    if (k < 0 || (size_t)k >= CELL_MAX - o) {
      snprintf(out + (o < CELL_MAX - 5 ? o : CELL_MAX - 5), 5, ",...");
      break;
    }
    o += (size_t)k;
  }
}

/* What an operator should know beyond the figures. */
static void row_note(char out[CELL_MAX], const row_t *r) {
  out[0] = 0;
  if (r->kind == KIND_OTHER) snprintf(out, CELL_MAX, "not a workspace");
  else if (r->kind == KIND_UNREADABLE) snprintf(out, CELL_MAX, "cannot read it (permission)");
  else if (r->kind == KIND_ERROR) snprintf(out, CELL_MAX, "cannot attach it (see --json)");
  else if (r->lock.state == WKSP_LOCK_DEAD && r->lock.tid)
    snprintf(out, CELL_MAX, "lock holder (tid %u) died: `wksp check` recovers", r->lock.tid);
  else if (r->lock.state == WKSP_LOCK_DEAD) snprintf(out, CELL_MAX, "lock holder died: `wksp check` recovers");
  else if (r->lock.state == WKSP_LOCK_BROKEN) snprintf(out, CELL_MAX, "lock not recoverable");
  else if (r->lock.writing && r->lock.state == WKSP_LOCK_FREE)
    snprintf(out, CELL_MAX, "change left half done: `wksp check` repairs");
  else if (!r->usage_ok) snprintf(out, CELL_MAX, "no consistent read (see --json)");
}

static void row_cells(char cell[COL_CNT][CELL_MAX], const row_t *r, int maps_ok, int bytes, int64_t now) {
  char h[CLI_HUMAN_MAX];
  for (int k = 0; k < COL_CNT; k++) snprintf(cell[k], CELL_MAX, "-");
  snprintf(cell[0], CELL_MAX, "%s", r->r.name);
  snprintf(cell[1], CELL_MAX, "%s", cli_human(r->r.sz, bytes, h));
  snprintf(cell[2], CELL_MAX, "%s", cli_page_name(r->r.page));
  snprintf(cell[3], CELL_MAX, "%04o", (unsigned)r->r.mode);
  age(cell[4], r->r.btime, now);
  age(cell[5], r->r.mtime, now);
  if (r->kind == KIND_WKSP && r->usage_ok) {
    const wksp_usage_t *u = &r->u;
    unsigned pm = u->total_sz ? (unsigned)((unsigned __int128)u->used_sz * 1000 / u->total_sz) : 0;
    snprintf(cell[6], CELL_MAX, "%u.%u%%", pm / 10, pm % 10);
    snprintf(cell[7], CELL_MAX, "%" PRIu64, u->used_cnt);
    snprintf(cell[8], CELL_MAX, "%s", cli_human(u->free_max, bytes, h));
  }
  mappers(cell[9], r, maps_ok);
  row_note(cell[10], r);
}

/* Appends cell s to line (padded to width unless it is the last cell). */
static size_t put_cell(char *line, size_t o, size_t cap, const char *s, int width, int right, int last) {
  int k = right ? snprintf(line + o, cap - o, "%*s", width, s)
              : snprintf(line + o, cap - o, "%-*s", last ? 0 : width, s);
  return k >= 0 && (size_t)k < cap - o ? o + (size_t)k : cap - 1;
}

/* One line of the table, without trailing blanks (an empty last cell). */
static void print_line(char cell[][CELL_MAX], const char *const *head, const int *w, int ncol) {
  char line[COL_CNT * (CELL_MAX + 2)];
  size_t o = 0;
  for (int k = 0; k < ncol; k++) {
    if (k) o = put_cell(line, o, sizeof line, "", 2, 0, 0);
    o = put_cell(line, o, sizeof line, head ? head[k] : cell[k], w[k], col_right[k], k == ncol - 1);
  }
  while (o && line[o - 1] == ' ') o--;
  printf("%.*s\n", (int)o, line);
}

/* cells: room for l->n rows. */
static void print_text(const list_t *l, char (*cells)[COL_CNT][CELL_MAX], int bytes) {
  if (!l->n) return;
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  int64_t now = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
  int w[COL_CNT], any_note = 0;
  for (int k = 0; k < COL_CNT; k++) w[k] = (int)strlen(col_head[k]);
  for (size_t i = 0; i < l->n; i++) {
    row_cells(cells[i], &l->v[i], l->maps_ok, bytes, now);
    for (int k = 0; k < COL_CNT; k++)
      if ((int)strlen(cells[i][k]) > w[k]) w[k] = (int)strlen(cells[i][k]);
    any_note |= cells[i][COL_CNT - 1][0] != 0;
  }
  int ncol = any_note ? COL_CNT : COL_CNT - 1; /* no empty NOTE column */
  print_line(NULL, col_head, w, ncol);
  for (size_t i = 0; i < l->n; i++) print_line(cells[i], NULL, w, ncol);
  if (l->maps_ok && l->unreadable)
    printf("note: the maps of %" PRIu64
           " process%s could not be read (permission); MAPPED BY may be incomplete\n",
           l->unreadable, l->unreadable == 1 ? "" : "es");
  if (!l->maps_ok) printf("note: /proc could not be read; MAPPED BY is unknown (?)\n");
}

int cmd_list(cli_t *c) {
  int json = 0, bytes = 0, unused = 0;
  const cli_opt_t opts[] = {{"unused", 0, CLI_OPT_FLAG, &unused, NULL, "only workspaces that no process maps (leaks?)"},
                            cli_opt_json(&json), cli_opt_bytes(&bytes), cli_opt_end()};
  int rc = cli_parse(c, opts, 0, 0);
  if (rc != CLI_GO) return rc;
  list_t l = {0};
  char(*cells)[COL_CNT][CELL_MAX] = NULL;
  rc = gather(c, &l, unused);
  if (rc == CLI_GO && !json && l.n && !(cells = malloc(l.n * sizeof *cells)))
    rc = cli_fail(c, "listing regions: out of memory");
  if (rc == CLI_GO) {
    if (json) print_json(&l);
    else print_text(&l, cells, bytes);
    rc = CLI_OK;
  }
  free(cells);
  rows_free(&l);
  return cli_flush(c, rc);
}
