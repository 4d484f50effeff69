/* SPDX-License-Identifier: Apache-2.0 */
/* tse-cap: CAP files for the native packages of this build, and what the card sees of a CAP. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tse/apdu.h"
#include "tse/cap.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: tse-cap list\n"
               "       tse-cap write PACKAGE -o FILE.cap\n"
               "       tse-cap info FILE.cap\n"
               "       tse-cap lfdb [--gpshell] FILE.cap\n"
               "CAP files that bind the native packages of tse to GlobalPlatform loads\n"
               "(docs/tse-cap.md).\n\n"
               "  list                   native packages and their modules (applets)\n"
               "  write PACKAGE -o FILE  write a CAP file for a package, named (tse.diag) or\n"
               "                         by AID in hex; load it with `gp --install FILE` or\n"
               "                         GPShell `install -file FILE`\n"
               "  info FILE              parse a CAP file as the card does: package, applets,\n"
               "                         components and the size of the load\n"
               "  lfdb [--gpshell] FILE  the load file data block in hex, as gp sends it (with\n"
               "                         --gpshell: with the Descriptor, as GPShell sends it)\n"
               "  --help                 this text\n");
}

static void print_aid(const uint8_t *b, size_t len)
{
    char hex[2 * TSE_AID_MAX + 1];
    tse_hex_encode(b, len > TSE_AID_MAX ? TSE_AID_MAX : len, hex);
    fputs(hex, stdout);
}

static int cmd_list(void)
{
    for (size_t i = 0; tse_native_packages[i]; i++) {
        const struct tse_package_def *p = tse_native_packages[i];
        printf("%-16s ", p->name);
        print_aid(p->aid, p->aid_len);
        printf("  v%u.%u\n", (unsigned)p->version_major, (unsigned)p->version_minor);
        for (size_t k = 0; k < p->n_modules; k++) {
            const struct tse_module_def *m = &p->modules[k];
            printf("  module %-16s ", m->name ? m->name : "");
            print_aid(m->aid, m->aid_len);
            printf("%s\n", (m->flags & TSE_MODULE_MULTISELECTABLE) ? "  multi-selectable" : "");
        }
    }
    return 0;
}

static int cmd_write(int argc, char **argv)
{
    const char *what = NULL, *out = NULL;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "-o") || !strcmp(argv[i], "--output")) {
            if (i + 1 >= argc) {
                fprintf(stderr, "tse-cap write: %s needs a file name\n", argv[i]);
                return 2;
            }
            out = argv[++i];
        } else if (argv[i][0] == '-') {
            fprintf(stderr, "tse-cap write: unknown option '%s'\n", argv[i]);
            return 2;
        } else if (!what) {
            what = argv[i];
        } else {
            fprintf(stderr, "tse-cap write: unexpected argument '%s'\n", argv[i]);
            return 2;
        }
    }
    if (!what || !out) {
        fprintf(stderr, "usage: tse-cap write PACKAGE -o FILE.cap\n");
        return 2;
    }
    const struct tse_package_def *p = tse_cap_find_package(what);
    if (!p) {
        fprintf(stderr, "tse-cap write: no native package '%s' (see tse-cap list)\n", what);
        return 1;
    }
    char err[256] = "";
    int rc = tse_cap_write_file(p, out, err, sizeof(err));
    if (rc) {
        fprintf(stderr, "tse-cap write: %s\n", err[0] ? err : tse_strerror(rc));
        return 1;
    }
    printf("%s: package %s ", out, p->name);
    print_aid(p->aid, p->aid_len);
    printf(", %zu applet%s\n", p->n_modules, p->n_modules == 1 ? "" : "s");
    return 0;
}

/* Parse an LFDB as the card does, wrapped in C4. 0 = accepted. */
static int parse(const uint8_t *lfdb, size_t len, struct tse_cap_stream *st, size_t *load_len)
{
    uint8_t *data = malloc(len + 5);
    if (!data)
        return TSE_ERR_NO_MEMORY;
    int n = tse_cap_load_data(lfdb, len, data, len + 5);
    tse_cap_stream_init(st);
    int rc = n < 0 ? n : tse_cap_stream_feed(st, data, (size_t)n);
    if (!rc)
        rc = tse_cap_stream_finish(st, NULL);
    *load_len = n < 0 ? 0 : (size_t)n;
    free(data);
    return rc;
}

static void print_reject(const char *file, const char *who, const struct tse_cap_stream *st)
{
    const char *comp = tse_cap_component_name(st->err_tag);
    fprintf(stderr, "%s: the card rejects the load %s: %s", file, who,
            tse_cap_strerror(st->reason));
    if (st->err_tag)
        fprintf(stderr, " (%s%s%u)", comp ? comp : "", comp ? ", tag " : "tag ",
                (unsigned)st->err_tag);
    fprintf(stderr, ", at byte %lu of the LOAD data\n", (unsigned long)st->err_offset);
}

static int cmd_info(int argc, char **argv)
{
    if (argc != 1 || argv[0][0] == '-') {
        fprintf(stderr, "usage: tse-cap info FILE.cap\n");
        return 2;
    }
    const char *file = argv[0];
    char err[320] = "";
    uint8_t *gp = NULL, *gpshell = NULL;
    size_t gp_len = 0, gpshell_len = 0, load_len = 0, load_len2 = 0;
    struct tse_cap_zip_info zi;
    int rc = tse_cap_read_file(file, TSE_CAP_NO_DESCRIPTOR, &gp, &gp_len, &zi, err, sizeof(err));
    if (!rc)
        rc = tse_cap_read_file(file, 0, &gpshell, &gpshell_len, NULL, err, sizeof(err));
    if (rc) {
        fprintf(stderr, "tse-cap info: %s\n", err[0] ? err : tse_strerror(rc));
        free(gp);
        return 1;
    }
    struct tse_cap_stream *st = malloc(sizeof(*st)), *st2 = malloc(sizeof(*st2));
    if (!st || !st2) {
        fprintf(stderr, "tse-cap info: out of memory\n");
        free(st);
        free(st2);
        free(gp);
        free(gpshell);
        return 1;
    }
    int prc = parse(gp, gp_len, st, &load_len);
    int prc2 = parse(gpshell, gpshell_len, st2, &load_len2);
    const struct tse_cap_info *in = &st->info;
    int status = 0;

    printf("file:        %s\n", file);
    printf("package dir: %s/javacard/%s\n", zi.package_path,
           zi.has_manifest ? "  (META-INF/MANIFEST.MF present)" : "  (no manifest)");
    if (in->package.len) {
        printf("package:     ");
        print_aid(in->package.b, in->package.len);
        printf("  v%u.%u", (unsigned)in->pkg_major, (unsigned)in->pkg_minor);
        if (in->has_name)
            printf("  name %.*s%s",
                   (int)(in->name_len < TSE_CAP_NAME_MAX ? in->name_len : TSE_CAP_NAME_MAX),
                   in->name, in->name_len > TSE_CAP_NAME_MAX ? "…" : "");
        const struct tse_package_def *native = tse_package_find(&in->package);
        printf("%s\n", native ? "  (a native package of this build)"
                              : "  (no native package of this build has this AID)");
    }
    if (in->cap_major)
        printf("CAP format:  %u.%u, flags %02X%s%s%s\n", (unsigned)in->cap_major,
               (unsigned)in->cap_minor, (unsigned)in->flags,
               (in->flags & TSE_CAP_ACC_INT) ? " integers" : "",
               (in->flags & TSE_CAP_ACC_EXPORT) ? " exports" : "",
               (in->flags & TSE_CAP_ACC_APPLET) ? " applets" : "");
    for (unsigned k = 0; k < in->n_applets && k < TSE_CAP_MAX_APPLETS; k++) {
        printf("%s", k ? "             " : "applets:     ");
        print_aid(in->applets[k].aid.b, in->applets[k].aid.len);
        printf("  install() at Method+0x%04X\n", (unsigned)in->applets[k].install_method_offset);
    }
    for (unsigned k = 0; k < in->n_imports && k < TSE_CAP_MAX_IMPORTS; k++) {
        printf("%s", k ? "             " : "imports:     ");
        print_aid(in->imports[k].aid.b, in->imports[k].aid.len);
        printf("  v%u.%u\n", (unsigned)in->imports[k].major, (unsigned)in->imports[k].minor);
    }
    printf("components in load order (offset in the load file data block, size of info):\n");
    for (unsigned k = 0; k < in->n_components; k++) {
        const struct tse_cap_component *c = &in->components[k];
        printf("  %-13s tag %2u  offset %5lu  size %5lu\n", tse_cap_component_name(c->tag),
               (unsigned)c->tag, (unsigned long)c->offset, (unsigned long)c->size);
    }
    if (zi.present & (1u << TSE_CAP_DESCRIPTOR))
        printf("  %-13s tag %2u  in the file (%lu bytes): GPShell sends it, gp does not\n",
               "Descriptor", TSE_CAP_DESCRIPTOR, (unsigned long)zi.file_sizes[TSE_CAP_DESCRIPTOR]);
    printf("load file data block: %zu bytes as gp sends it, %zu as GPShell sends it\n", gp_len,
           gpshell_len);
    if (!prc) {
        printf("LOAD data:   %zu bytes (C4 object): %zu LOAD command(s) of 247 bytes with C-MAC, "
               "%zu of 239 with C-DEC\n",
               load_len, (load_len + 246) / 247, (load_len + 238) / 239);
        printf("card check:  accepted (gp form)");
    } else {
        print_reject(file, "as gp sends it", st);
        status = 1;
    }
    if (!prc2) {
        printf("%s",
               prc ? "card check:  accepted (GPShell form)\n" : ", accepted (GPShell form)\n");
    } else {
        if (!prc)
            printf("\n");
        print_reject(file, "as GPShell sends it", st2);
        status = 1;
    }
    free(st);
    free(st2);
    free(gp);
    free(gpshell);
    return status;
}

static int cmd_lfdb(int argc, char **argv)
{
    unsigned flags = TSE_CAP_NO_DESCRIPTOR;
    const char *file = NULL;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--gpshell")) {
            flags = 0;
        } else if (argv[i][0] == '-' || file) {
            fprintf(stderr, "usage: tse-cap lfdb [--gpshell] FILE.cap\n");
            return 2;
        } else {
            file = argv[i];
        }
    }
    if (!file) {
        fprintf(stderr, "usage: tse-cap lfdb [--gpshell] FILE.cap\n");
        return 2;
    }
    char err[320] = "";
    uint8_t *lfdb = NULL;
    size_t len = 0;
    int rc = tse_cap_read_file(file, flags, &lfdb, &len, NULL, err, sizeof(err));
    if (rc) {
        fprintf(stderr, "tse-cap lfdb: %s\n", err[0] ? err : tse_strerror(rc));
        return 1;
    }
    char hex[2 * 32 + 1];
    for (size_t off = 0; off < len; off += 32) {
        size_t n = len - off < 32 ? len - off : 32;
        tse_hex_encode(lfdb + off, n, hex);
        puts(hex);
    }
    free(lfdb);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(cmd, "list")) {
        if (argc != 2) {
            fprintf(stderr, "usage: tse-cap list\n");
            return 2;
        }
        return cmd_list();
    }
    if (!strcmp(cmd, "write"))
        return cmd_write(argc - 2, argv + 2);
    if (!strcmp(cmd, "info"))
        return cmd_info(argc - 2, argv + 2);
    if (!strcmp(cmd, "lfdb"))
        return cmd_lfdb(argc - 2, argv + 2);
    fprintf(stderr, "tse-cap: unknown command '%s'\n", cmd);
    usage(stderr);
    return 2;
}
