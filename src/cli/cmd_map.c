/* wksp map: a picture of a workspace's data region, or of the one a
 * checkpoint file describes: a grid of cells (map.h says what a cell
 * shows), a legend of the largest tags, as text or as an SVG.
 *
 * Text is plain ASCII (one letter per legend tag, upper case for a full
 * cell, lower case for a partly free one, '.' for a free one) unless
 * colour is wanted: then each cell is a Unicode block in its tag's colour,
 * a lower block (its height the allocated part) for a partly free cell and
 * a dim '·' for a free one.  Colour is on when standard output is a
 * terminal, TERM is not "dumb" and NO_COLOR is unset or empty; --color and
 * --no-color decide instead. */
#include "cli.h"
#include "map.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

enum { WIDTH_DEFAULT = 64, ROWS_DEFAULT = 16, SIDE_MAX = 4096, WIDTH_TTY_MAX = 256 };

/* Per legend index, then other and free: SVG colours and their nearest
 * xterm-256 colours. */
static const char *const svg_color[MAP_SYM_FREE + 1] = {"#4e79a7", "#f28e2b", "#e15759", "#76b7b2",
                                                         "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
                                                         "#9c755f", "#17becf", "#8c8c8c", "#eeeeee"};
static const int ansi_color[MAP_SYM_FREE + 1] = {67, 208, 167, 109, 71, 221, 139, 217, 137, 38, 246, 240};

typedef struct {
  const char *what;   /* "workspace NAME" or "checkpoint PATH (workspace NAME)" */
  map_t m;
  size_t width;       /* cells per row */
  int color, bytes;
} pic_t;

/* ---- the source: a workspace or a checkpoint --------------------------- */

/* What is drawn: allocations (and free partitions, for a workspace) in a
 * data region. */
typedef struct {
  char what[WKSP_NAME_MAX + 4200];
  wksp_part_t *parts;    /* owned, unless they belong to info */
  size_t cnt;
  uint64_t lo, hi;
  wksp_checkpt_info_t info;
  int has_info;
} src_t;

static void src_free(src_t *s) {
  if (s->has_info) wksp_checkpt_info_free(&s->info);
  else free(s->parts);
}

/* Is arg a checkpoint rather than a workspace?  "-" and anything with a
 * '/' are files; a valid name is a workspace if a region of that name
 * exists, else a file if one exists here.  1 file, 0 workspace, -1 after
 * printing why it is neither. */
static int is_file(cli_t *c, const char *arg) {
  if (!strcmp(arg, "-") || strchr(arg, '/')) return 1;
  wksp_shmem_info_t info;
  int rc = wksp_name_check(arg) ? WKSP_ERR_NOENT : wksp_shmem_stat(arg, &info);
  if (!rc) return 0;
  if (rc != WKSP_ERR_NOENT) return cli_lib_err(c, "looking up workspace \"%s\"", arg), -1;
  if (!access(arg, F_OK)) return 1;
  return cli_fail(c, "no workspace or checkpoint file named \"%s\"", arg), -1;
}

static int from_wksp(cli_t *c, const char *name, src_t *s) {
  wksp_t *w;
  int rc = cli_attach(c, name, WKSP_RDONLY, &w);
  if (rc != CLI_GO) return rc;
  rc = cli_list_parts(c, w, &s->parts, &s->cnt);
  s->lo = wksp_gaddr_lo(w);
  s->hi = wksp_gaddr_hi(w);
  snprintf(s->what, sizeof s->what, "workspace %s", name);
  wksp_detach(w);
  return rc;
}

static int from_checkpt(cli_t *c, const char *path, src_t *s) {
  int from_stdin = !strcmp(path, "-");
  if (from_stdin && isatty(0))
    return cli_fail(c, "reading a checkpoint from standard input: refusing to read from a terminal");
  if (from_stdin ? wksp_checkpt_info_fd(0, "-", &s->info) : wksp_checkpt_info(path, &s->info))
    return cli_lib_err(c, "reading checkpoint \"%s\"", path);
  s->has_info = 1;
  const wksp_preview_t *pv = &s->info.pv;
  if (!wksp_footprint(pv->part_max, pv->data_max))
    return cli_fail(
        c, "mapping checkpoint \"%s\": part_max %" PRIu64 " and data_max %" PRIu64 " give no valid workspace",
        path, pv->part_max, pv->data_max);
  s->parts = s->info.parts;
  s->cnt = (size_t)s->info.alloc_cnt;
  s->lo = WKSP_HDR_SZ + WKSP_PART_SZ * pv->part_max;
  s->hi = s->lo + pv->data_max;
  snprintf(s->what, sizeof s->what, "checkpoint %s (workspace %s)", path, pv->name);
  return CLI_GO;
}

/* ---- legend ----------------------------------------------------------- */

/* A line per legend tag, one for the other tags (if any), one for free
 * space: the same text for the terminal and the SVG. */
enum { LEGEND_LINES = MAP_LEGEND_MAX + 2 };

typedef struct {
  int sym;
  char text[256];
} legend_line_t;

static size_t legend_build(const pic_t *p, legend_line_t out[LEGEND_LINES]) {
  const map_t *m = &p->m;
  char h[CLI_HUMAN_MAX], h2[CLI_HUMAN_MAX];
  size_t shown = m->tag_cnt < MAP_LEGEND_MAX ? m->tag_cnt : MAP_LEGEND_MAX, n = 0;
  for (; n < shown; n++) {
    out[n].sym = (int)n;
    snprintf(out[n].text, sizeof out[n].text, "tag %" PRIu64 ": %s in %" PRIu64 " allocation%s",
             m->tags[n].tag, cli_human(m->tags[n].sz, p->bytes, h), m->tags[n].cnt,
             m->tags[n].cnt == 1 ? "" : "s");
  }
  if (m->tag_cnt > shown) {
    uint64_t sz = 0, cnt = 0;
    for (size_t i = shown; i < m->tag_cnt; i++) sz += m->tags[i].sz, cnt += m->tags[i].cnt;
    out[n].sym = MAP_SYM_OTHER;
    snprintf(out[n++].text, sizeof out[0].text, "%zu other tag%s: %s in %" PRIu64 " allocation%s",
             m->tag_cnt - shown, m->tag_cnt - shown == 1 ? "" : "s", cli_human(sz, p->bytes, h), cnt,
             cnt == 1 ? "" : "s");
  }
  out[n].sym = MAP_SYM_FREE;
  snprintf(out[n++].text, sizeof out[0].text, "free: %s in %" PRIu64 " range%s%s%s",
           cli_human(m->free_sz, p->bytes, h), m->free_cnt, m->free_cnt == 1 ? "" : "s",
           m->free_cnt ? ", largest " : "", m->free_cnt ? cli_human(m->free_max, p->bytes, h2) : "");
  return n;
}

/* ---- text ------------------------------------------------------------- */

static int digits(uint64_t v) {
  int n = 1;
  while (v >= 10) v /= 10, n++;
  return n;
}

/* The text of one cell: a letter (plain) or a coloured block (colour). */
static void put_cell_text(const pic_t *p, const map_cell_t *cell, int *cur_color) {
  static const char *const eighth[8] = {"", "\u2581", "\u2582", "\u2583", "\u2584", "\u2585", "\u2586", "\u2587"};
  int e = map_eighths(cell);
  if (!p->color) {
    char ch = cell->sym == MAP_SYM_FREE ? '.' : cell->sym == MAP_SYM_OTHER ? (e == 8 ? '#' : '+')
                                                                             : (char)((e == 8 ? 'A' : 'a') + cell->sym);
    putchar(ch);
    return;
  }
  if (ansi_color[cell->sym] != *cur_color) {
    printf("\033[38;5;%dm", ansi_color[cell->sym]);
    *cur_color = ansi_color[cell->sym];
  }
  fputs(cell->sym == MAP_SYM_FREE ? "\u00b7" : e == 8 ? "\u2588" : eighth[e], stdout);
}

/* The legend's key for sym: its letter, or a coloured full block. */
static void put_key(const pic_t *p, int sym) {
  if (!p->color) {
    putchar(sym == MAP_SYM_FREE ? '.' : sym == MAP_SYM_OTHER ? '#' : 'A' + sym);
    return;
  }
  printf("\033[38;5;%dm%s\033[0m", ansi_color[sym], sym == MAP_SYM_FREE ? "\u00b7" : "\u2588");
}

static void print_legend(const pic_t *p) {
  legend_line_t lines[LEGEND_LINES];
  size_t n = legend_build(p, lines);
  for (size_t i = 0; i < n; i++) {
    put_key(p, lines[i].sym);
    printf(" %s\n", lines[i].text);
  }
  printf(p->color ? "a cell shows the tag with the most bytes in it; a lower block: partly free\n"
                  : "a cell shows the tag with the most bytes in it; lower case (+ for #): partly free\n");
}

static void print_text(const pic_t *p) {
  const map_t *m = &p->m;
  char h[CLI_HUMAN_MAX], h2[CLI_HUMAN_MAX];
  cli_text_str(stdout, p->what); /* a path from the command line may hold any byte */
  printf(": data [%" PRIu64 ", %" PRIu64 "), %s; %zu cell%s of %s, %zu per row\n", m->lo, m->hi,
         cli_human(m->hi - m->lo, p->bytes, h), m->cell_cnt, m->cell_cnt == 1 ? "" : "s",
         cli_human(m->cell_sz, p->bytes, h2), p->width);
  int lw = digits(m->cells[(m->cell_cnt - 1) / p->width * p->width].lo), color = -1;
  for (size_t i = 0; i < m->cell_cnt; i += p->width) {
    printf("%*" PRIu64 " ", lw, m->cells[i].lo);
    for (size_t k = i; k < i + p->width && k < m->cell_cnt; k++) put_cell_text(p, &m->cells[k], &color);
    if (color >= 0) printf("\033[0m");
    color = -1;
    printf("\n");
  }
  print_legend(p);
}

/* ---- SVG -------------------------------------------------------------- */

enum { CELL_PX = 10, PITCH_PX = 12, CHAR_PX = 7, LINE_PX = 16 };

static void svg_cell(FILE *f, const map_cell_t *cell, int x, int y) {
  fprintf(f,
          "<rect class=\"cell\" x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"%s\" data-lo=\"%" PRIu64
          "\" "
          "data-hi=\"%" PRIu64 "\" data-used=\"%" PRIu64 "\" data-tag=\"%" PRIu64 "\"><title>[%" PRIu64
          ", %" PRIu64 "): ",
          x, y, CELL_PX, CELL_PX, svg_color[MAP_SYM_FREE], cell->lo, cell->hi, cell->used, cell->tag,
          cell->lo, cell->hi);
  if (cell->used)
    fprintf(f, "tag %" PRIu64 ", ", cell->tag);
  fprintf(f, "%" PRIu64 " of %" PRIu64 " bytes allocated</title></rect>\n", cell->used,
          (cell->hi - cell->lo));
  if (!cell->used) return;
  double h = (double)CELL_PX * (double)cell->used / (double)(cell->hi - cell->lo);
  fprintf(f, "<rect class=\"fill\" x=\"%d\" y=\"%.3f\" width=\"%d\" height=\"%.3f\" fill=\"%s\" pointer-events=\"none\"/>\n",
          x, (double)(y + CELL_PX) - h, CELL_PX, h, svg_color[cell->sym]);
}

static void svg_key(FILE *f, int sym, int y, const char *text) {
  fprintf(f, "<rect class=\"key\" x=\"4\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"%s\"/>", y, CELL_PX, CELL_PX,
          svg_color[sym]);
  fprintf(f, "<text x=\"%d\" y=\"%d\">", 4 + PITCH_PX, y + CELL_PX - 1);
  cli_xml_str(f, text);
  fprintf(f, "</text>\n");
}

static void svg_legend(FILE *f, const legend_line_t *lines, size_t n, int y) {
  fprintf(f, "<g class=\"legend\">\n");
  for (size_t i = 0; i < n; i++, y += LINE_PX) svg_key(f, lines[i].sym, y, lines[i].text);
  fprintf(f, "</g>\n");
}

static void svg_write(FILE *f, const pic_t *p) {
  const map_t *m = &p->m;
  size_t rows = (m->cell_cnt + p->width - 1) / p->width;
  legend_line_t lines[LEGEND_LINES];
  size_t legend = legend_build(p, lines);
  int lw = digits(m->cells[(rows - 1) * p->width].lo) * CHAR_PX + 8;
  int grid_y = 2 * LINE_PX, legend_y = grid_y + (int)rows * PITCH_PX + LINE_PX / 2;
  int wpx = lw + (int)p->width * PITCH_PX + 4, hpx = legend_y + (int)legend * LINE_PX + 4;
  char h[CLI_HUMAN_MAX], h2[CLI_HUMAN_MAX];
  if (wpx < 480) wpx = 480;
  fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
             "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
             "font-family=\"monospace\" font-size=\"11\">\n<title>wksp map: ", wpx, hpx, wpx, hpx);
  cli_xml_str(f, p->what);
  fprintf(f, "</title>\n<rect width=\"100%%\" height=\"100%%\" fill=\"#ffffff\"/>\n<text x=\"4\" y=\"%d\">", LINE_PX);
  cli_xml_str(f, p->what);
  fprintf(f,
          ": data [%" PRIu64 ", %" PRIu64 "), %s; %zu cells of %s, %zu per row</text>\n<g class=\"grid\">\n",
          m->lo, m->hi, cli_human(m->hi - m->lo, p->bytes, h), m->cell_cnt,
          cli_human(m->cell_sz, p->bytes, h2), p->width);
  for (size_t r = 0; r < rows; r++) {
    int y = grid_y + (int)r * PITCH_PX;
    fprintf(f, "<text class=\"label\" x=\"%d\" y=\"%d\" text-anchor=\"end\">%" PRIu64 "</text>\n", lw - 6,
            y + CELL_PX - 1, m->cells[r * p->width].lo);
    for (size_t k = r * p->width; k < (r + 1) * p->width && k < m->cell_cnt; k++)
      svg_cell(f, &m->cells[k], lw + (int)(k - r * p->width) * PITCH_PX, y);
  }
  fprintf(f, "</g>\n");
  svg_legend(f, lines, legend, legend_y);
  fprintf(f, "</svg>\n");
}

/* Writes the SVG to path ("-": standard output); a failed write leaves no
 * file behind. */
static int svg_save(cli_t *c, const pic_t *p, const char *path) {
  if (!strcmp(path, "-")) {
    svg_write(stdout, p);
    return CLI_OK;
  }
  FILE *f = fopen(path, "w");
  if (!f) return cli_os_err(c, errno, "writing \"%s\"", path);
  svg_write(f, p);
  errno = 0;
  int bad = ferror(f);
  if (fclose(f) || bad) {
    int e = errno ? errno : EIO;
    unlink(path);
    return cli_os_err(c, e, "writing \"%s\"", path);
  }
  return CLI_OK;
}

/* ---- the command --------------------------------------------------------- */

static int side(cli_t *c, const char *what, const char *s, size_t *out) {
  uint64_t v;
  int rc = cli_u64(c, what, s, &v);
  if (rc != CLI_GO) return rc;
  if (!v || v > SIDE_MAX) return cli_usage_err(c, "bad %s \"%s\": must be 1..%d", what, s, SIDE_MAX);
  *out = (size_t)v;
  return CLI_GO;
}

/* Cells per row when not given: the terminal's width less the labels, or
 * a fixed 64 when not drawing to a terminal (so output does not depend on
 * where it goes). */
static size_t width_default(int svg, uint64_t hi) {
  struct winsize ws;
  int label_w = digits(hi) + 1;
  if (svg || !isatty(1) || ioctl(1, TIOCGWINSZ, &ws) || ws.ws_col < label_w + 16) return WIDTH_DEFAULT;
  size_t w = (size_t)(ws.ws_col - label_w);
  return w > WIDTH_TTY_MAX ? WIDTH_TTY_MAX : w;
}

static int want_color(int color, int no_color) {
  if (no_color) return 0;
  if (color) return 1;
  const char *nc = getenv("NO_COLOR"), *term = getenv("TERM");
  return isatty(1) && !(nc && *nc) && !(term && !strcmp(term, "dumb"));
}

int cmd_map(cli_t *c) {
  const char *width_s = NULL, *rows_s = NULL, *svg = NULL;
  int color = 0, no_color = 0, bytes = 0;
  const cli_opt_t opts[] = {
      {"width", 0, CLI_OPT_ARG, &width_s, "N", "cells per row (default: the terminal's width, or 64)"},
      {"rows", 0, CLI_OPT_ARG, &rows_s, "N", "rows at most (default 16)"},
      {"svg", 0, CLI_OPT_ARG, &svg, "FILE", "write the picture as an SVG to FILE (\"-\": standard\noutput) instead"},
      {"color", 0, CLI_OPT_FLAG, &color, NULL, "colour, whatever the output is"},
      {"no-color", 0, CLI_OPT_FLAG, &no_color, NULL, "no colour, whatever the output is"},
      cli_opt_bytes(&bytes),
      cli_opt_end()};
  int rc = cli_parse(c, opts, 1, 1);
  if (rc != CLI_GO) return rc;
  if ((rc = cli_exclusive(c, color, "--color", no_color, "--no-color")) != CLI_GO) return rc;
  size_t width = 0, rows = ROWS_DEFAULT;
  if (width_s && (rc = side(c, "--width", width_s, &width)) != CLI_GO) return rc;
  if (rows_s && (rc = side(c, "--rows", rows_s, &rows)) != CLI_GO) return rc;
  const char *arg = c->pos[0];
  int file = is_file(c, arg);
  if (file < 0) return CLI_FAIL;
  src_t src = {0};
  rc = file ? from_checkpt(c, arg, &src) : from_wksp(c, arg, &src);
  if (!width) width = width_default(svg != NULL, src.hi);
  pic_t p = {.what = src.what, .width = width, .color = !svg && want_color(color, no_color), .bytes = bytes};
  if (rc == CLI_GO) {
    int e = map_build(&p.m, src.parts, src.cnt, src.lo, src.hi, width * rows);
    if (e) rc = cli_os_err(c, e, "mapping %s", src.what);
  }
  if (rc == CLI_GO && svg) {
    rc = svg_save(c, &p, svg);
  } else if (rc == CLI_GO) {
    print_text(&p);
    rc = CLI_OK;
  }
  src_free(&src);
  map_free(&p.m);
  return cli_flush(c, rc);
}
