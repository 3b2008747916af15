/* tests/lib/crash_points.h: which of the allocator's crash points
 * (WKSP_HOOK_*, src/wksp/wksp_private.h) each mutating operation passes.
 * The one list both kill tests (tests/wksp/test_wksp_kill.c and
 * tests/reliability/test_kill_points.c) walk: a crash point added to the
 * allocator is added here once. */
#ifndef WKSP_TESTS_CRASH_POINTS_H
#define WKSP_TESTS_CRASH_POINTS_H

#include "wksp/wksp_private.h"

enum { OP_ALLOC, OP_FREE, OP_TAG_FREE, OP_RESET, OP_REBUILD, OP_REPLACE, OP_CNT };

static const char *const op_name[OP_CNT] = {"alloc", "free", "tag_free", "reset", "rebuild", "replace"};

typedef struct {
  int op, point;
} scenario_t;

static const scenario_t scenarios[] = {
    {OP_ALLOC, WKSP_HOOK_ALLOC_BEGIN},      {OP_ALLOC, WKSP_HOOK_ALLOC_UNLINKED},
    {OP_ALLOC, WKSP_HOOK_ALLOC_SPLIT},      {OP_ALLOC, WKSP_HOOK_ALLOC_COMMIT},
    {OP_ALLOC, WKSP_HOOK_ALLOC_END},        {OP_FREE, WKSP_HOOK_FREE_BEGIN},
    {OP_FREE, WKSP_HOOK_FREE_UNLINKED},     {OP_FREE, WKSP_HOOK_FREE_COMMIT},
    {OP_FREE, WKSP_HOOK_FREE_MERGE_NEXT},   {OP_FREE, WKSP_HOOK_FREE_MERGE_PREV},
    {OP_FREE, WKSP_HOOK_FREE_END},          {OP_TAG_FREE, WKSP_HOOK_BULK_SHADOW},
    {OP_TAG_FREE, WKSP_HOOK_BULK_COMMIT},   {OP_TAG_FREE, WKSP_HOOK_BULK_APPLY},
    {OP_TAG_FREE, WKSP_HOOK_BULK_APPLIED},  {OP_TAG_FREE, WKSP_HOOK_REBUILD_MERGE},
    {OP_TAG_FREE, WKSP_HOOK_REBUILD_INDEX}, {OP_TAG_FREE, WKSP_HOOK_REBUILD_END},
    {OP_RESET, WKSP_HOOK_BULK_SHADOW},      {OP_RESET, WKSP_HOOK_BULK_COMMIT},
    {OP_RESET, WKSP_HOOK_BULK_APPLY},       {OP_RESET, WKSP_HOOK_BULK_APPLIED},
    {OP_RESET, WKSP_HOOK_REBUILD_INDEX},    {OP_RESET, WKSP_HOOK_REBUILD_END},
    {OP_REBUILD, WKSP_HOOK_REBUILD_INDEX},  {OP_REBUILD, WKSP_HOOK_REBUILD_END},
    {OP_REPLACE, WKSP_HOOK_BULK_SHADOW},    {OP_REPLACE, WKSP_HOOK_BULK_COMMIT},
    {OP_REPLACE, WKSP_HOOK_BULK_APPLY},     {OP_REPLACE, WKSP_HOOK_BULK_APPLIED},
    {OP_REPLACE, WKSP_HOOK_REBUILD_INDEX},  {OP_REPLACE, WKSP_HOOK_REBUILD_END},
};
enum { SCEN_CNT = sizeof scenarios / sizeof scenarios[0] };

#endif
