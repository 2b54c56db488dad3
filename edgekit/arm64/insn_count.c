/* Counts the guest instructions the main thread of a qemu-user process executes; writes the total
 * to the file named by the plugin argument "out=PATH" when the process exits. Only vCPU 0 (the
 * guest's main thread, which runs a 1-thread inference) is counted: other threads (idle runtime
 * workers) spin for as long as the host lets them, which no two runs share.
 * edgekit's own code against qemu's TCG plugin API (version 1, qemu 7.2); only the few
 * declarations it calls are written here. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

typedef uint64_t qemu_plugin_id_t;
typedef struct {
    const char *target_name;
    struct { int min; int cur; } version;
} qemu_info_head;
struct qemu_plugin_tb;
typedef void (*tb_trans_cb)(qemu_plugin_id_t id, struct qemu_plugin_tb *tb);
typedef void (*udata_cb)(qemu_plugin_id_t id, void *userdata);
typedef void (*vcpu_udata_cb)(unsigned int vcpu_index, void *userdata);

void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id, tb_trans_cb cb);
void qemu_plugin_register_vcpu_tb_exec_cb(struct qemu_plugin_tb *tb, vcpu_udata_cb cb, int flags, void *userdata);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id, udata_cb cb, void *userdata);

__attribute__((visibility("default"))) int qemu_plugin_version = 1;

static uint64_t executed;  /* only vCPU 0 writes it */
static char out_path[4096];

static void on_block(unsigned int vcpu_index, void *userdata) {
    if (vcpu_index == 0) {
        executed += (uint64_t)(uintptr_t)userdata;
    }
}

static void on_translate(qemu_plugin_id_t id, struct qemu_plugin_tb *tb) {
    (void)id;
    /* flags 0 = QEMU_PLUGIN_CB_NO_REGS; the block's instruction count travels as the user data */
    qemu_plugin_register_vcpu_tb_exec_cb(tb, on_block, 0, (void *)(uintptr_t)qemu_plugin_tb_n_insns(tb));
}

static void write_count(qemu_plugin_id_t id, void *userdata) {
    (void)id; (void)userdata;
    FILE *f = fopen(out_path, "w");
    if (f) {
        fprintf(f, "%" PRIu64 "\n", executed);
        fclose(f);
    }
}

__attribute__((visibility("default"))) int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_head *info,
                                                               int argc, char **argv) {
    (void)info;
    for (int i = 0; i < argc; i++) {
        if (strncmp(argv[i], "out=", 4) == 0) {
            snprintf(out_path, sizeof out_path, "%s", argv[i] + 4);
        }
    }
    if (!out_path[0]) {
        return 1;
    }
    qemu_plugin_register_vcpu_tb_trans_cb(id, on_translate);
    qemu_plugin_register_atexit_cb(id, write_count, NULL);
    return 0;
}
