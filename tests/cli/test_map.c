/* Unit tests of the picture `wksp map` draws (src/cli/map.c, compiled into
 * this program): every cell of small known layouts checked exactly, ties,
 * partial cells, the legend ranking and its overflow, free-range figures,
 * limits and bad input. */
#include "../../src/cli/map.c"
#include "../lib/test.h"

#include <errno.h>

typedef struct {
  uint64_t used, tag;
  int sym, eighths;
} want_cell_t;

/* The layout of the header comment of test_cells:
 *   cell  range        allocations in it                    used tag  fill
 *   0     [1000,1010)  tag 5                                10   5    8
 *   1     [1010,1020)  tag 5                                10   5    8
 *   2     [1020,1030)  tag 5 to 1025                        5    5    4
 *   3     [1030,1040)  6: 1030-32, 7: 1032-34, 6: 1036-38   6    6    5 (tag 6 has 4 bytes, 7 has 2)
 *   4     [1040,1050)  8: 1041-44, 7: 1044-47               6    8    5 (a tie: 8 comes first)
 *   5     [1050,1060)  -                                    0    0    0
 *   6     [1060,1070)  6: 1060-61                           1    6    1
 *   7     [1070,1080)  7: 1070-85                           10   7    8
 *   8     [1080,1090)  7 to 1085                            5    7    4
 *   9     [1090,1095)  9: 1090-95 (the last cell is short)  5    9    8 */
static const wksp_part_t layout[] = {
    {1000, 1025, 5}, {1025, 1030, 0}, {1030, 1032, 6}, {1032, 1034, 7}, {1036, 1038, 6}, {1041, 1044, 8},
    {1044, 1047, 7}, {1060, 1061, 6}, {1070, 1085, 7}, {1090, 1095, 9},
};

static void test_cells(void) {
  map_t m;
  CHECK_EQ(map_build(&m, layout, sizeof layout / sizeof layout[0], 1000, 1095, 10), 0);
  CHECK_EQ(m.cell_sz, 10);
  CHECK_EQ(m.cell_cnt, 10);
  /* Ranking: 5 (25 bytes), 7 (20), 6 and 9 (5 each: the smaller tag first), 8 (3). */
  static const uint64_t rank[5][3] = {{5, 25, 1}, {7, 20, 3}, {6, 5, 3}, {9, 5, 1}, {8, 3, 1}};
  CHECK_EQ(m.tag_cnt, 5);
  for (int i = 0; i < 5; i++) {
    CHECK_EQ(m.tags[i].tag, rank[i][0]);
    CHECK_EQ(m.tags[i].sz, rank[i][1]);
    CHECK_EQ(m.tags[i].cnt, rank[i][2]);
  }
  static const want_cell_t want[10] = {{10, 5, 0, 8}, {10, 5, 0, 8}, {5, 5, 0, 4},  {6, 6, 2, 5},
                                       {6, 8, 4, 5},  {0, 0, MAP_SYM_FREE, 0}, {1, 6, 2, 1}, {10, 7, 1, 8},
                                       {5, 7, 1, 4},  {5, 9, 3, 8}};
  for (int i = 0; i < 10; i++) {
    const map_cell_t *c = &m.cells[i];
    CHECK_EQ(c->lo, 1000 + 10 * (uint64_t)i);
    CHECK_EQ(c->hi, i == 9 ? 1095 : 1010 + 10 * (uint64_t)i);
    CHECK_EQ(c->used, want[i].used);
    CHECK_EQ(c->tag, want[i].tag);
    CHECK_EQ(c->sym, want[i].sym);
    CHECK_EQ(map_eighths(c), want[i].eighths);
  }
  CHECK_EQ(m.used_cnt, 9);
  CHECK_EQ(m.used_sz, 58);
  /* Gaps: 1025-30, 1034-36, 1038-41, 1047-60, 1061-70, 1085-90. */
  CHECK_EQ(m.free_cnt, 6);
  CHECK_EQ(m.free_sz, 37);
  CHECK_EQ(m.free_max, 13);
  map_free(&m);
  CHECK(m.cells == NULL && m.tags == NULL);
}

/* Tags beyond the legend's MAP_LEGEND_MAX are drawn as "other". */
static void test_legend_overflow(void) {
  wksp_part_t p[MAP_LEGEND_MAX + 2];
  for (uint64_t i = 0; i < MAP_LEGEND_MAX + 2; i++) /* tag 100+i holds 100-i bytes: ranked in order */
    p[i] = (wksp_part_t){i * 100, i * 100 + 100 - i, 100 + i};
  map_t m;
  CHECK_EQ(map_build(&m, p, MAP_LEGEND_MAX + 2, 0, (MAP_LEGEND_MAX + 2) * 100, MAP_LEGEND_MAX + 2), 0);
  CHECK_EQ(m.tag_cnt, MAP_LEGEND_MAX + 2);
  for (int i = 0; i < MAP_LEGEND_MAX + 2; i++) {
    CHECK_EQ(m.tags[i].tag, 100 + (uint64_t)i);
    CHECK_EQ(m.cells[i].sym, i < MAP_LEGEND_MAX ? i : MAP_SYM_OTHER);
    CHECK_EQ(map_eighths(&m.cells[i]), i ? 7 : 8); /* 99/100 bytes is not full */
  }
  CHECK_EQ(m.free_cnt, MAP_LEGEND_MAX + 1);
  map_free(&m);
}

static void test_sizes(void) {
  map_t m;
  /* More cells than bytes: one byte each. */
  wksp_part_t one = {2, 3, 1};
  CHECK_EQ(map_build(&m, &one, 1, 0, 5, 64), 0);
  CHECK_EQ(m.cell_sz, 1);
  CHECK_EQ(m.cell_cnt, 5);
  CHECK_EQ(m.cells[2].sym, 0);
  CHECK_EQ(m.cells[1].sym, MAP_SYM_FREE);
  CHECK_EQ(m.cells[3].sym, MAP_SYM_FREE);
  CHECK_EQ(m.free_cnt, 2);
  map_free(&m);
  /* The widest region: no overflow in the cell arithmetic. */
  wksp_part_t top = {UINT64_MAX - 10, UINT64_MAX, 3};
  CHECK_EQ(map_build(&m, &top, 1, 0, UINT64_MAX, 3), 0);
  CHECK_EQ(m.cell_sz, UINT64_MAX / 3);
  CHECK_EQ(m.cell_cnt, 3);
  CHECK_EQ(m.cells[2].hi, UINT64_MAX);
  CHECK_EQ(m.cells[2].used, 10);
  CHECK_EQ(map_eighths(&m.cells[2]), 1);
  map_free(&m);
  /* Nothing allocated. */
  CHECK_EQ(map_build(&m, NULL, 0, 4096, 4096 + 1000, 7), 0);
  CHECK_EQ(m.cell_sz, 143);
  CHECK_EQ(m.cell_cnt, 7);
  CHECK_EQ(m.cells[6].hi - m.cells[6].lo, 1000 - 6 * 143);
  for (int i = 0; i < 7; i++) CHECK_EQ(m.cells[i].sym, MAP_SYM_FREE);
  CHECK_EQ(m.tag_cnt, 0);
  CHECK_EQ(m.free_cnt, 1);
  CHECK_EQ(m.free_max, 1000);
  map_free(&m);
}

static void test_bad_input(void) {
  map_t m;
  wksp_part_t overlap[2] = {{10, 20, 1}, {15, 30, 2}}, outside = {90, 101, 1}, empty = {10, 10, 1};
  wksp_part_t before = {5, 20, 1}, unsorted[2] = {{50, 60, 1}, {10, 20, 1}};
  CHECK_EQ(map_build(&m, NULL, 0, 100, 100, 4), EINVAL);
  CHECK_EQ(map_build(&m, NULL, 0, 0, 100, 0), EINVAL);
  CHECK_EQ(map_build(&m, NULL, 1, 0, 100, 4), EINVAL);
  CHECK_EQ(map_build(&m, overlap, 2, 0, 100, 4), EINVAL);
  CHECK_EQ(map_build(&m, &outside, 1, 0, 100, 4), EINVAL);
  CHECK_EQ(map_build(&m, &empty, 1, 0, 100, 4), EINVAL);
  CHECK_EQ(map_build(&m, &before, 1, 10, 100, 4), EINVAL);
  CHECK_EQ(map_build(&m, unsorted, 2, 0, 100, 4), EINVAL);
  CHECK(m.cells == NULL && m.tags == NULL && m.cell_cnt == 0);
}

int main(void) {
  TEST_RUN(test_cells);
  TEST_RUN(test_legend_overflow);
  TEST_RUN(test_sizes);
  TEST_RUN(test_bad_input);
  return test_done();
}
