
/*
 * Copyright (C) ngx_ai_gateway contributors
 */


/*
 * The module's JSON (yajl on the pools) against yajl_tree and yajl_gen on
 * malloc() (t/unit/yajl_ref.c).  First byte even: the rest is a text,
 * which both parsers parse to the same tree or both refuse, and whose
 * tree both generators write the same or both refuse.  Odd: the rest is
 * a sequence of generator calls, which both generators write the same
 * until both refuse the same call.
 */


#include "fuzz.h"
#include "yajl_ref.h"


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    u_char      *p;
    ngx_uint_t   same;

    if (size == 0) {
        return 0;
    }

    /* a copy of its own, so that a read past its end is seen */

    p = malloc(size - 1 ? size - 1 : 1);
    if (p == NULL) {
        return 0;
    }

    memcpy(p, data + 1, size - 1);

    if (data[0] & 1) {
        same = yajl_ref_same_gen(p, size - 1);

    } else {
        same = yajl_ref_same_parse(p, size - 1);
    }

    free(p);

    if (!same) {
        abort();
    }

    return 0;
}
