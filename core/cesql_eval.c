/* The generic CESQL entry points: the virtual machine (core/cesql_vm_internal.h) with an
 * accessor called through its function pointer. */
#include "core/cesql_vm_internal.h"

void rc_cesql_eval(const rc_cesql_program_t *prog, rc_cesql_get_fn get, const void *event,
                   char *scratch, size_t scratch_len, rc_cesql_result_t *out)
{
    rc__cesql_run(prog, get, event, scratch, scratch_len, out);
}

bool rc_cesql_match(const rc_cesql_program_t *prog, rc_cesql_get_fn get, const void *event,
                    rc_cesql_errkind_t *err)
{
    char scratch[RC_CESQL_MATCH_SCRATCH];
    rc_cesql_result_t r;
    rc_cesql_eval(prog, get, event, scratch, sizeof(scratch), &r);
    if (err != NULL)
        *err = r.error;
    return r.error == RC_CESQL_OK && r.value.type == RC_CESQL_TYPE_BOOL && r.value.u.b;
}
