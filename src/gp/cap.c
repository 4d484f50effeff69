/* SPDX-License-Identifier: Apache-2.0 */
/*
 * CAP files and the GlobalPlatform LOAD stream (include/tse/cap.h, docs/tse-cap.md).
 *
 * The card half is a byte-driven state machine: every byte is interpreted on its own, and
 * only the runs that carry nothing we look at (signatures, the bodies of most components)
 * are skipped in bulk. That is what makes any split of the stream give the same result.
 * Every length in the stream is untrusted and checked against the length of the object
 * around it before anything is counted.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zip.h>

#include "tse/cap.h"
#include "tse/sw.h"
#include "tse/tlv.h"

/* The card keeps the state in transient RAM between LOAD commands. */
_Static_assert(sizeof(struct tse_cap_stream) <= 1536, "tse_cap_stream grew past 1.5 KiB");

static const char *const comp_names[TSE_CAP_MAX_TAG + 1] = {
    NULL,           "Header",     "Directory", "Applet",          "Import",
    "ConstantPool", "Class",      "Method",    "StaticField",     "RefLocation",
    "Export",       "Descriptor", "Debug",     "StaticResources",
};

const char *tse_cap_component_name(uint8_t tag)
{
    return tag <= TSE_CAP_MAX_TAG ? comp_names[tag] : NULL;
}

/* JCVM install order, which both gp and GPShell follow when they concatenate the component
 * files: Header, Directory, Import, Applet, Class, Method, StaticField, Export, ConstantPool,
 * RefLocation, (Static Resources), Descriptor. 0 = not allowed in a load. */
static const uint8_t comp_rank[TSE_CAP_MAX_TAG + 1] = {
    0, 1, 2, 4, 3, 9, 5, 6, 7, 10, 8, 12, 0, 11,
};

#define MANDATORY                                                                                  \
    (1u << TSE_CAP_HEADER | 1u << TSE_CAP_DIRECTORY | 1u << TSE_CAP_IMPORT |                       \
     1u << TSE_CAP_CONSTANTPOOL | 1u << TSE_CAP_CLASS | 1u << TSE_CAP_METHOD |                     \
     1u << TSE_CAP_STATICFIELD | 1u << TSE_CAP_REFLOCATION)

static const char *const reason_text[TSE_CAP_ERR_COUNT] = {
    [TSE_CAP_OK] = "no error",
    [TSE_CAP_ERR_EMPTY] = "empty load data",
    [TSE_CAP_ERR_TRUNCATED] = "load data ends inside a data object or component",
    [TSE_CAP_ERR_NO_LFDB] = "DAP blocks but no load file data block (C4)",
    [TSE_CAP_ERR_LOAD_TAG] = "unexpected tag in the load data (expected E2, C4 or D4)",
    [TSE_CAP_ERR_CIPHERED] = "ciphered load file data block (D4) is not supported",
    [TSE_CAP_ERR_BER_LENGTH] = "malformed BER length (80 or longer than 83 xx xx xx)",
    [TSE_CAP_ERR_DAP] = "malformed DAP block (expected 4F SD-AID then C3 signature)",
    [TSE_CAP_ERR_TRAILING] = "bytes after the load file data block",
    [TSE_CAP_ERR_TOO_LONG] = "load data longer than 4 GiB",
    [TSE_CAP_ERR_HEADER_FIRST] = "the first component is not the Header component",
    [TSE_CAP_ERR_MAGIC] = "Header component: magic is not DECAFFED",
    [TSE_CAP_ERR_CAP_VERSION] = "Header component: CAP format is not 2.1, 2.2 or 2.3",
    [TSE_CAP_ERR_EXTENDED] = "extended-format CAP file (flag 08) is not supported",
    [TSE_CAP_ERR_HEADER] = "Header component malformed (size, AID length or package name)",
    [TSE_CAP_ERR_UNKNOWN_TAG] = "unknown component tag for this CAP format",
    [TSE_CAP_ERR_DEBUG] = "Debug component in a load file",
    [TSE_CAP_ERR_DUPLICATE] = "component appears twice",
    [TSE_CAP_ERR_ORDER] = "components out of the Java Card install order",
    [TSE_CAP_ERR_OVERRUN] = "component runs past the end of the load file data block",
    [TSE_CAP_ERR_DIRECTORY] = "Directory component malformed or disagrees with the components",
    [TSE_CAP_ERR_IMPORT] = "Import component malformed",
    [TSE_CAP_ERR_APPLET] = "Applet component malformed",
    [TSE_CAP_ERR_TOO_MANY_APPLETS] = "more applets than this card supports",
    [TSE_CAP_ERR_FLAGS] = "Header flags disagree with the Applet/Export components",
    [TSE_CAP_ERR_MISSING] = "a mandatory component is missing",
};

const char *tse_cap_strerror(int reason)
{
    if (reason < 0 || reason >= TSE_CAP_ERR_COUNT)
        return "unknown reason";
    return reason_text[reason];
}

uint16_t tse_cap_reason_sw(int reason)
{
    switch (reason) {
    case TSE_CAP_OK:
        return SW_NO_ERROR;
    case TSE_CAP_ERR_CIPHERED:
    case TSE_CAP_ERR_EXTENDED:
        return SW_FUNC_NOT_SUPPORTED;
    case TSE_CAP_ERR_TOO_MANY_APPLETS:
    case TSE_CAP_ERR_TOO_LONG:
        return SW_FILE_FULL;
    default:
        return SW_WRONG_DATA;
    }
}

/* ---- Card side --------------------------------------------------------------------------------
 */

enum phase {
    PH_TOP = 0, /* expecting E2, C4 or D4 */
    PH_TOP_LEN, /* BER length of E2 / C4 */
    PH_DAP_TAG, /* inside E2: 4F or C3 */
    PH_DAP_LEN,
    PH_DAP_VAL,
    PH_COMP_HDR, /* inside C4: tag and size of a component */
    PH_COMP_INFO,
    PH_DONE,     /* C4 complete */
    PH_FINISHED, /* finish() accepted the stream */
    PH_FAILED,
};

static int fail(struct tse_cap_stream *st, enum tse_cap_reason r, uint8_t tag)
{
    st->reason = (uint8_t)r;
    st->err_tag = tag;
    st->err_offset = st->info.stream_len;
    st->phase = PH_FAILED;
    return TSE_ERR_PARSE;
}

int tse_cap_stream_init(struct tse_cap_stream *st)
{
    if (!st)
        return TSE_ERR_INVALID_ARG;
    memset(st, 0, sizeof(*st));
    st->phase = PH_TOP;
    return 0;
}

/* A BER length byte: 0 in progress, 1 complete (st->len_acc), <0 failure. */
static int len_byte(struct tse_cap_stream *st, uint8_t b)
{
    if (st->len_need == 0) {
        if (b < 0x80) {
            st->len_acc = b;
            return 1;
        }
        if (b < 0x81 || b > 0x83)
            return fail(st, TSE_CAP_ERR_BER_LENGTH, 0);
        st->len_need = (uint8_t)(b & 0x7F);
        st->len_have = 0;
        st->len_acc = 0;
        return 0;
    }
    st->len_acc = st->len_acc << 8 | b;
    if (++st->len_have < st->len_need)
        return 0;
    st->len_need = 0;
    return 1;
}

/* Everything that must hold once the whole LFDB has arrived. */
static int lfdb_end(struct tse_cap_stream *st)
{
    struct tse_cap_info *in = &st->info;
    for (uint8_t t = 1; t <= TSE_CAP_MAX_TAG; t++)
        if ((MANDATORY >> t & 1u) && !(st->seen >> t & 1u))
            return fail(st, t == TSE_CAP_HEADER ? TSE_CAP_ERR_HEADER_FIRST : TSE_CAP_ERR_MISSING,
                        t);
    bool applet = st->seen >> TSE_CAP_APPLET & 1u, export = st->seen >> TSE_CAP_EXPORT & 1u;
    if (applet != ((in->flags & TSE_CAP_ACC_APPLET) != 0))
        return fail(st, TSE_CAP_ERR_FLAGS, TSE_CAP_APPLET);
    if (export != ((in->flags & TSE_CAP_ACC_EXPORT) != 0))
        return fail(st, TSE_CAP_ERR_FLAGS, TSE_CAP_EXPORT);
    /* The Directory declares the size of every component of the CAP file. A component in the
     * load must have the declared size; one left out must be declared absent, except the
     * Descriptor, which the tools may leave out (gp does), and Debug, which is never loaded. */
    uint32_t actual[TSE_CAP_MAX_TAG + 1] = {0};
    for (uint8_t k = 0; k < in->n_components; k++)
        actual[in->components[k].tag] = in->components[k].size;
    for (uint8_t t = 1; t <= TSE_CAP_MAX_TAG; t++) {
        if (t == TSE_CAP_DEBUG)
            continue;
        bool present = st->seen >> t & 1u;
        if (present ? in->dir_sizes[t] != actual[t]
                    : (t != TSE_CAP_DESCRIPTOR && in->dir_sizes[t] != 0))
            return fail(st, TSE_CAP_ERR_DIRECTORY, t);
    }
    if (st->dir_imports != in->n_imports)
        return fail(st, TSE_CAP_ERR_DIRECTORY, TSE_CAP_IMPORT);
    if (st->dir_applets != in->n_applets)
        return fail(st, TSE_CAP_ERR_DIRECTORY, TSE_CAP_APPLET);
    st->phase = PH_DONE;
    return 0;
}

/* Header info by position: magic, CAP minor/major, flags, package minor/major, AID length,
 * AID, then (CAP 2.2+) name length and name. */
static int header_byte(struct tse_cap_stream *st, uint8_t b)
{
    struct tse_cap_info *in = &st->info;
    uint32_t p = st->comp_pos;
    if (p < 4) {
        st->acc = st->acc << 8 | b;
        if (p == 3 && st->acc != 0xDECAFFEDu)
            return fail(st, TSE_CAP_ERR_MAGIC, TSE_CAP_HEADER);
        return 0;
    }
    switch (p) {
    case 4:
        in->cap_minor = b;
        return 0;
    case 5:
        in->cap_major = b;
        if (b != 2 || in->cap_minor < 1 || in->cap_minor > 3)
            return fail(st, TSE_CAP_ERR_CAP_VERSION, TSE_CAP_HEADER);
        return 0;
    case 6:
        in->flags = b;
        if (b & TSE_CAP_ACC_EXTENDED)
            return fail(st, TSE_CAP_ERR_EXTENDED, TSE_CAP_HEADER);
        return 0;
    case 7:
        in->pkg_minor = b;
        return 0;
    case 8:
        in->pkg_major = b;
        return 0;
    case 9:
        if (b < TSE_AID_MIN || b > TSE_AID_MAX)
            return fail(st, TSE_CAP_ERR_HEADER, TSE_CAP_HEADER);
        in->package.len = b;
        return 0;
    default:
        break;
    }
    uint32_t aid_end = 10u + in->package.len;
    if (p < aid_end) {
        in->package.b[p - 10] = b;
        return 0;
    }
    if (p == aid_end) {
        /* package_name_info exists from CAP format 2.2 on */
        if (in->cap_minor < 2)
            return fail(st, TSE_CAP_ERR_HEADER, TSE_CAP_HEADER);
        in->has_name = true;
        in->name_len = b;
        return 0;
    }
    uint32_t k = p - aid_end - 1;
    if (k >= in->name_len)
        return fail(st, TSE_CAP_ERR_HEADER, TSE_CAP_HEADER);
    if (k < TSE_CAP_NAME_MAX)
        in->name[k] = (char)b;
    return 0;
}

static int header_end(struct tse_cap_stream *st)
{
    struct tse_cap_info *in = &st->info;
    uint32_t need = 10u + in->package.len;
    if (st->comp_size < 10 || st->comp_size < need)
        return fail(st, TSE_CAP_ERR_HEADER, TSE_CAP_HEADER);
    if (st->comp_size > need && st->comp_size != need + 1 + in->name_len)
        return fail(st, TSE_CAP_ERR_HEADER, TSE_CAP_HEADER);
    in->header_done = true;
    return 0;
}

/* Directory layout by CAP format: 11 u2 sizes (2.1), 12 (2.2: + Debug), 12 + a u4 Static
 * Resources size (2.3); then static_field_size_info (6 bytes), import_count, applet_count,
 * custom_count and the custom component entries (tag, u2 size, AID). */
static uint32_t dir_fixed(const struct tse_cap_stream *st)
{
    uint32_t n = st->info.cap_minor == 1 ? 11 : 12;
    return 2 * n + (st->info.cap_minor >= 3 ? 4 : 0) + 6 + 3;
}

static int directory_byte(struct tse_cap_stream *st, uint8_t b)
{
    struct tse_cap_info *in = &st->info;
    uint32_t p = st->comp_pos, n = in->cap_minor == 1 ? 11 : 12, fixed = dir_fixed(st);
    if (p < 2 * n) {
        st->acc = (st->acc << 8 | b) & 0xFFFFu;
        if (p & 1)
            in->dir_sizes[p / 2 + 1] = st->acc;
        return 0;
    }
    if (in->cap_minor >= 3 && p < 2 * n + 4) {
        st->acc = st->acc << 8 | b;
        if (p == 2 * n + 3)
            in->dir_sizes[TSE_CAP_STATICRES] = st->acc;
        return 0;
    }
    if (p < fixed - 3)
        return 0; /* static field image sizes: nothing of the load depends on them */
    if (p == fixed - 3) {
        st->dir_imports = b;
        return 0;
    }
    if (p == fixed - 2) {
        st->dir_applets = b;
        return 0;
    }
    if (p == fixed - 1) {
        st->dir_customs = b;
        st->sub_count = b;
        return 0;
    }
    /* custom_component_info: u1 tag (128..255), u2 size, u1 AID_length, AID */
    if (st->sub_done >= st->sub_count)
        return fail(st, TSE_CAP_ERR_DIRECTORY, TSE_CAP_DIRECTORY);
    if (st->sub_field == 0 && b < 128)
        return fail(st, TSE_CAP_ERR_DIRECTORY, TSE_CAP_DIRECTORY);
    if (st->sub_field == 3) {
        if (b < TSE_AID_MIN || b > TSE_AID_MAX)
            return fail(st, TSE_CAP_ERR_DIRECTORY, TSE_CAP_DIRECTORY);
        st->sub_aid_len = b;
    }
    st->sub_field++;
    if (st->sub_field > 3 && st->sub_field == 4u + st->sub_aid_len) {
        st->sub_field = 0;
        st->sub_done++;
    }
    return 0;
}

/* Import and Applet are a count and entries of the form `minor major AID_length AID`
 * (Import) or `AID_length AID install_method_offset(2)` (Applet); sub_field counts bytes
 * inside the current entry, sub_done the entries complete. */
static int import_byte(struct tse_cap_stream *st, uint8_t b)
{
    struct tse_cap_info *in = &st->info;
    if (st->comp_pos == 0) {
        st->sub_count = b;
        in->n_imports = b;
        return 0;
    }
    if (st->sub_done >= st->sub_count)
        return fail(st, TSE_CAP_ERR_IMPORT, TSE_CAP_IMPORT);
    struct tse_cap_import *imp =
        st->sub_done < TSE_CAP_MAX_IMPORTS ? &in->imports[st->sub_done] : NULL;
    uint8_t f = st->sub_field;
    if (f == 0) {
        if (imp)
            imp->minor = b;
    } else if (f == 1) {
        if (imp)
            imp->major = b;
    } else if (f == 2) {
        if (b < TSE_AID_MIN || b > TSE_AID_MAX)
            return fail(st, TSE_CAP_ERR_IMPORT, TSE_CAP_IMPORT);
        st->sub_aid_len = b;
        if (imp)
            imp->aid.len = b;
    } else if (imp) {
        imp->aid.b[f - 3] = b;
    }
    st->sub_field++;
    if (st->sub_field > 2 && st->sub_field == 3u + st->sub_aid_len) {
        st->sub_field = 0;
        st->sub_done++;
    }
    return 0;
}

static int applet_byte(struct tse_cap_stream *st, uint8_t b)
{
    struct tse_cap_info *in = &st->info;
    if (st->comp_pos == 0) {
        if (b == 0)
            return fail(st, TSE_CAP_ERR_APPLET, TSE_CAP_APPLET);
        if (b > TSE_CAP_MAX_APPLETS)
            return fail(st, TSE_CAP_ERR_TOO_MANY_APPLETS, TSE_CAP_APPLET);
        st->sub_count = b;
        in->n_applets = b;
        return 0;
    }
    if (st->sub_done >= st->sub_count)
        return fail(st, TSE_CAP_ERR_APPLET, TSE_CAP_APPLET);
    struct tse_cap_applet *ap = &in->applets[st->sub_done];
    uint8_t f = st->sub_field;
    if (f == 0) {
        if (b < TSE_AID_MIN || b > TSE_AID_MAX)
            return fail(st, TSE_CAP_ERR_APPLET, TSE_CAP_APPLET);
        st->sub_aid_len = b;
        ap->aid.len = b;
    } else if (f <= st->sub_aid_len) {
        ap->aid.b[f - 1] = b;
    } else {
        ap->install_method_offset = (uint16_t)(ap->install_method_offset << 8 | b);
    }
    st->sub_field++;
    if (st->sub_field == 3u + st->sub_aid_len) {
        st->sub_field = 0;
        st->sub_done++;
    }
    return 0;
}

static bool parsed_component(uint8_t tag)
{
    return tag == TSE_CAP_HEADER || tag == TSE_CAP_DIRECTORY || tag == TSE_CAP_IMPORT ||
           tag == TSE_CAP_APPLET;
}

/* The current component's info is complete. */
static int comp_end(struct tse_cap_stream *st)
{
    uint8_t tag = st->comp_hdr[0];
    bool entries_done = st->sub_done == st->sub_count && st->sub_field == 0;
    switch (tag) {
    case TSE_CAP_HEADER:
        if (header_end(st))
            return TSE_ERR_PARSE;
        break;
    case TSE_CAP_DIRECTORY:
        if (st->comp_size < dir_fixed(st) || !entries_done)
            return fail(st, TSE_CAP_ERR_DIRECTORY, tag);
        break;
    case TSE_CAP_IMPORT:
        if (st->comp_size < 1 || !entries_done)
            return fail(st, TSE_CAP_ERR_IMPORT, tag);
        break;
    case TSE_CAP_APPLET:
        if (st->comp_size < 1 || !entries_done)
            return fail(st, TSE_CAP_ERR_APPLET, tag);
        break;
    default:
        break;
    }
    st->phase = PH_COMP_HDR;
    st->comp_hdr_len = 0;
    return 0;
}

/* One byte of a component header (tag, then a u2 size, or u4 for Static Resources). */
static int comp_hdr_byte(struct tse_cap_stream *st, uint8_t b)
{
    struct tse_cap_info *in = &st->info;
    if (st->comp_hdr_len == 0) {
        if (in->n_components == 0 && b != TSE_CAP_HEADER)
            return fail(st, TSE_CAP_ERR_HEADER_FIRST, b);
        if (b == TSE_CAP_DEBUG)
            return fail(st, TSE_CAP_ERR_DEBUG, b);
        if (b == 0 || b > TSE_CAP_MAX_TAG || (b == TSE_CAP_STATICRES && in->cap_minor < 3))
            return fail(st, TSE_CAP_ERR_UNKNOWN_TAG, b);
        if (st->seen >> b & 1u)
            return fail(st, TSE_CAP_ERR_DUPLICATE, b);
        if (comp_rank[b] <= st->comp_rank)
            return fail(st, TSE_CAP_ERR_ORDER, b);
        st->comp_hdr_need = b == TSE_CAP_STATICRES ? 5 : 3;
        /* st->value_left was already decremented for this byte */
        in->components[in->n_components].offset = in->lfdb_len - st->value_left - 1;
    }
    st->comp_hdr[st->comp_hdr_len++] = b;
    if (st->comp_hdr_len < st->comp_hdr_need)
        return 0;
    uint32_t size = 0;
    for (uint8_t k = 1; k < st->comp_hdr_need; k++)
        size = size << 8 | st->comp_hdr[k];
    uint8_t tag = st->comp_hdr[0];
    if (size > st->value_left)
        return fail(st, TSE_CAP_ERR_OVERRUN, tag);
    struct tse_cap_component *c = &in->components[in->n_components++];
    c->tag = tag;
    c->size = size;
    st->seen |= (uint16_t)(1u << tag);
    st->comp_rank = comp_rank[tag];
    st->comp_size = size;
    st->comp_pos = 0;
    st->acc = 0;
    st->sub_field = 0;
    st->sub_aid_len = 0;
    st->sub_done = 0;
    st->sub_count = 0;
    st->phase = PH_COMP_INFO;
    if (size == 0)
        return comp_end(st);
    return 0;
}

static int comp_info_byte(struct tse_cap_stream *st, uint8_t b)
{
    int rc = 0;
    switch (st->comp_hdr[0]) {
    case TSE_CAP_HEADER:
        rc = header_byte(st, b);
        break;
    case TSE_CAP_DIRECTORY:
        rc = directory_byte(st, b);
        break;
    case TSE_CAP_IMPORT:
        rc = import_byte(st, b);
        break;
    case TSE_CAP_APPLET:
        rc = applet_byte(st, b);
        break;
    default:
        break;
    }
    if (rc)
        return rc;
    if (++st->comp_pos == st->comp_size)
        return comp_end(st);
    return 0;
}

/* One byte inside the C4 value (value_left already counts it out). */
static int lfdb_byte(struct tse_cap_stream *st, uint8_t b)
{
    int rc = st->phase == PH_COMP_HDR ? comp_hdr_byte(st, b) : comp_info_byte(st, b);
    if (rc)
        return rc;
    if (st->value_left == 0) {
        if (st->phase != PH_COMP_HDR || st->comp_hdr_len != 0)
            return fail(st, TSE_CAP_ERR_OVERRUN, st->comp_hdr[0]);
        return lfdb_end(st);
    }
    return 0;
}

/* The E2 value ended after its C3: record the block. */
static void dap_done(struct tse_cap_stream *st)
{
    struct tse_cap_info *in = &st->info;
    if (in->n_dap < TSE_CAP_MAX_DAP)
        in->dap[in->n_dap].sd = st->dap_sd;
    if (in->n_dap < UINT8_MAX)
        in->n_dap++;
    st->phase = PH_TOP;
}

/* One byte inside an E2 value (value_left already counts it out). */
static int dap_byte(struct tse_cap_stream *st, uint8_t b)
{
    int rc;
    switch (st->phase) {
    case PH_DAP_TAG:
        if ((st->dap_state == 0 && b != 0x4F) || (st->dap_state == 1 && b != 0xC3) ||
            st->dap_state > 1)
            return fail(st, TSE_CAP_ERR_DAP, 0);
        st->in_tag = b;
        st->phase = PH_DAP_LEN;
        break;
    case PH_DAP_LEN:
        rc = len_byte(st, b);
        if (rc <= 0)
            return rc;
        if (st->len_acc > st->value_left || st->len_acc == 0 ||
            (st->in_tag == 0x4F && (st->len_acc < TSE_AID_MIN || st->len_acc > TSE_AID_MAX)))
            return fail(st, TSE_CAP_ERR_DAP, 0);
        st->inner_left = st->len_acc;
        if (st->in_tag == 0x4F)
            st->dap_sd.len = 0;
        else if (st->info.n_dap < TSE_CAP_MAX_DAP) { /* the signature starts with the next byte */
            st->info.dap[st->info.n_dap].sig_offset = st->info.stream_len + 1;
            st->info.dap[st->info.n_dap].sig_len = st->len_acc;
        }
        st->phase = PH_DAP_VAL;
        break;
    default: /* PH_DAP_VAL of 4F (C3 values are skipped in bulk) */
        st->dap_sd.b[st->dap_sd.len++] = b;
        if (--st->inner_left == 0) {
            st->dap_state++;
            st->phase = PH_DAP_TAG;
            /* known before the signature arrives, for callers collecting it as it streams */
            if (st->info.n_dap < TSE_CAP_MAX_DAP)
                st->info.dap[st->info.n_dap].sd = st->dap_sd;
        }
        break;
    }
    if (st->value_left == 0) {
        if (st->phase != PH_DAP_TAG || st->dap_state != 2)
            return fail(st, TSE_CAP_ERR_DAP, 0);
        dap_done(st);
    }
    return 0;
}

static int top_byte(struct tse_cap_stream *st, uint8_t b)
{
    int rc;
    if (st->phase == PH_TOP) {
        if (b == 0xD4)
            return fail(st, TSE_CAP_ERR_CIPHERED, 0);
        if (b != 0xE2 && b != 0xC4)
            return fail(st, TSE_CAP_ERR_LOAD_TAG, 0);
        st->top_tag = b;
        st->len_need = 0;
        st->phase = PH_TOP_LEN;
        return 0;
    }
    /* PH_TOP_LEN */
    rc = len_byte(st, b);
    if (rc <= 0)
        return rc;
    st->value_left = st->len_acc;
    if (st->top_tag == 0xE2) {
        if (st->value_left == 0)
            return fail(st, TSE_CAP_ERR_DAP, 0);
        st->dap_state = 0;
        st->phase = PH_DAP_TAG;
        return 0;
    }
    st->info.lfdb_len = st->len_acc;
    st->info.lfdb_offset = st->info.stream_len + 1; /* the LFDB starts with the next byte */
    st->phase = PH_COMP_HDR;
    st->comp_hdr_len = 0;
    if (st->value_left == 0)
        return lfdb_end(st);
    return 0;
}

int tse_cap_stream_feed(struct tse_cap_stream *st, const uint8_t *data, size_t len)
{
    if (!st || (!data && len))
        return TSE_ERR_INVALID_ARG;
    if (st->phase == PH_FAILED)
        return TSE_ERR_PARSE;
    if (st->phase == PH_FINISHED)
        return TSE_ERR_STATE;
    size_t i = 0;
    while (i < len) {
        if (st->info.stream_len == UINT32_MAX)
            return fail(st, TSE_CAP_ERR_TOO_LONG, 0);
        size_t run = 0;
        /* bulk runs: signature bytes and the bodies of components we do not interpret */
        if (st->phase == PH_DAP_VAL && st->in_tag == 0xC3)
            run = st->inner_left;
        else if (st->phase == PH_COMP_INFO && !parsed_component(st->comp_hdr[0]))
            run = st->comp_size - st->comp_pos;
        if (run) {
            size_t n = len - i < run ? len - i : run;
            if (n > UINT32_MAX - st->info.stream_len)
                n = UINT32_MAX - st->info.stream_len;
            st->info.stream_len += (uint32_t)n;
            st->value_left -= (uint32_t)n;
            i += n;
            if (st->phase == PH_DAP_VAL) {
                st->inner_left -= (uint32_t)n;
                if (st->inner_left == 0) {
                    if (st->info.n_dap < TSE_CAP_MAX_DAP)
                        st->info.dap[st->info.n_dap].sig_len = st->len_acc;
                    st->dap_state++;
                    st->phase = PH_DAP_TAG;
                    if (st->value_left == 0)
                        dap_done(st);
                }
            } else {
                st->comp_pos += (uint32_t)n;
                if (st->comp_pos == st->comp_size) {
                    if (comp_end(st))
                        return TSE_ERR_PARSE;
                    if (st->value_left == 0 && lfdb_end(st))
                        return TSE_ERR_PARSE;
                }
            }
            continue;
        }
        uint8_t b = data[i++];
        int rc;
        switch (st->phase) {
        case PH_TOP:
        case PH_TOP_LEN:
            rc = top_byte(st, b);
            break;
        case PH_DAP_TAG:
        case PH_DAP_LEN:
        case PH_DAP_VAL:
            st->value_left--;
            rc = dap_byte(st, b);
            break;
        case PH_COMP_HDR:
        case PH_COMP_INFO:
            st->value_left--;
            rc = lfdb_byte(st, b);
            break;
        default: /* PH_DONE */
            rc = fail(st, TSE_CAP_ERR_TRAILING, 0);
            break;
        }
        if (rc)
            return rc;
        st->info.stream_len++;
    }
    return 0;
}

int tse_cap_stream_finish(struct tse_cap_stream *st, struct tse_cap_info *info)
{
    if (!st)
        return TSE_ERR_INVALID_ARG;
    if (st->phase == PH_FAILED)
        return TSE_ERR_PARSE;
    if (st->phase != PH_DONE && st->phase != PH_FINISHED) {
        if (st->info.stream_len == 0)
            return fail(st, TSE_CAP_ERR_EMPTY, 0);
        if (st->phase == PH_TOP)
            return fail(st, TSE_CAP_ERR_NO_LFDB, 0);
        bool in_comp = st->phase == PH_COMP_INFO || (st->phase == PH_COMP_HDR && st->comp_hdr_len);
        return fail(st, TSE_CAP_ERR_TRUNCATED, in_comp ? st->comp_hdr[0] : 0);
    }
    st->phase = PH_FINISHED;
    if (info)
        *info = st->info;
    return 0;
}

/* ---- Host side: building the components --------------------------------------------------------
 */

/*
 * The CAP of a native package is what a Java Card converter would emit for this source, one
 * class per module (the runtime binds the package AID to native code, so the bytecode only has
 * to be well-formed):
 *
 *   package <name>;
 *   public class M<i> extends javacard.framework.Applet {
 *       private M<i>() { register(); }
 *       public static void install(byte[] b, short off, byte len) { new M<i>(); }
 *       public void process(APDU apdu) { }
 *   }
 *
 * External references use the tokens of javacard.framework 1.0 (Java Card 2.1), which later
 * versions keep: class Applet = 3, class APDU = 10, Applet's constructor = static token 0,
 * register() = virtual token 1, process(APDU) = virtual token 7. CAP format 2.1, as converters
 * still write for packages without remote interfaces: no package name (2.2 has one only for
 * those), no signature pool, 11 component sizes in the Directory. The layout is that of the
 * converter's output for such a class (compared byte by byte with two converter-made CAPs).
 */

#define JCF_MINOR        0
#define JCF_MAJOR        1
#define CLS_APPLET       3
#define CLS_APDU         10
#define TOK_REGISTER     1
#define TOK_PROCESS      7
#define MODULE_METHODS   25 /* bytes of the three methods of one module in the Method component */
#define CLASS_INFO_BYTES 12

static const uint8_t jcf_aid[] = {0xA0, 0x00, 0x00, 0x00, 0x62, 0x01, 0x01};

struct capbuild {
    uint8_t buf[8192];
    size_t used;
    bool over;
    /* each component with its tag and size field; len 0 = not in this CAP */
    size_t off[TSE_CAP_MAX_TAG + 1], len[TSE_CAP_MAX_TAG + 1];
};

static void put(struct capbuild *cb, const uint8_t *b, size_t n)
{
    if (cb->over || n > sizeof(cb->buf) - cb->used) {
        cb->over = true;
        return;
    }
    memcpy(cb->buf + cb->used, b, n);
    cb->used += n;
}

static void put8(struct capbuild *cb, unsigned v)
{
    uint8_t b = (uint8_t)v;
    put(cb, &b, 1);
}

static void put16(struct capbuild *cb, unsigned v)
{
    uint8_t b[2] = {(uint8_t)(v >> 8), (uint8_t)v};
    put(cb, b, 2);
}

static void begin(struct capbuild *cb, uint8_t tag)
{
    cb->off[tag] = cb->used;
    put8(cb, tag);
    put16(cb, 0);
}

static void end(struct capbuild *cb, uint8_t tag)
{
    if (cb->over)
        return;
    size_t size = cb->used - cb->off[tag] - 3;
    cb->buf[cb->off[tag] + 1] = (uint8_t)(size >> 8);
    cb->buf[cb->off[tag] + 2] = (uint8_t)size;
    cb->len[tag] = cb->used - cb->off[tag];
}

/* A dotted Java package name ("tse.diag"): identifiers of ASCII letters, digits and '_'. */
static bool valid_name(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n > 100)
        return false;
    bool start = true;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        bool letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
        bool digit = c >= '0' && c <= '9';
        if (c == '.') {
            if (start)
                return false;
            start = true;
        } else if (letter || (digit && !start)) {
            start = false;
        } else {
            return false;
        }
    }
    return !start;
}

static int check_pkg(const struct tse_package_def *pkg)
{
    if (!pkg || !pkg->aid || pkg->aid_len < TSE_AID_MIN || pkg->aid_len > TSE_AID_MAX ||
        !valid_name(pkg->name) || pkg->n_modules > TSE_CAP_MAX_APPLETS ||
        (pkg->n_modules && !pkg->modules))
        return TSE_ERR_INVALID_ARG;
    for (size_t i = 0; i < pkg->n_modules; i++)
        if (!pkg->modules[i].aid || pkg->modules[i].aid_len < TSE_AID_MIN ||
            pkg->modules[i].aid_len > TSE_AID_MAX)
            return TSE_ERR_INVALID_ARG;
    return 0;
}

static void build(const struct tse_package_def *pkg, struct capbuild *cb)
{
    size_t n = pkg->n_modules;
    /* constant pool: 0 Applet.<init>, 1 Applet.register(), then per module its class and
     * its constructor */
    unsigned cp_count = n ? 2 + 2 * (unsigned)n : 0;
#define CLASS_OFF(i)  (CLASS_INFO_BYTES * (unsigned)(i))
#define METHOD_OFF(i) (1 + MODULE_METHODS * (unsigned)(i))

    memset(cb, 0, sizeof(*cb));

    begin(cb, TSE_CAP_HEADER);
    put(cb, (const uint8_t *)"\xDE\xCA\xFF\xED", 4);
    put8(cb, 1); /* CAP format 2.1 */
    put8(cb, 2);
    put8(cb, n ? TSE_CAP_ACC_APPLET : 0);
    put8(cb, pkg->version_minor);
    put8(cb, pkg->version_major);
    put8(cb, pkg->aid_len);
    put(cb, pkg->aid, pkg->aid_len);
    end(cb, TSE_CAP_HEADER);

    if (n) {
        begin(cb, TSE_CAP_APPLET);
        put8(cb, (unsigned)n);
        for (size_t i = 0; i < n; i++) {
            put8(cb, pkg->modules[i].aid_len);
            put(cb, pkg->modules[i].aid, pkg->modules[i].aid_len);
            put16(cb, METHOD_OFF(i) + 11); /* install() follows the constructor */
        }
        end(cb, TSE_CAP_APPLET);
    }

    begin(cb, TSE_CAP_IMPORT);
    put8(cb, n ? 1 : 0);
    if (n) {
        put8(cb, JCF_MINOR);
        put8(cb, JCF_MAJOR);
        put8(cb, sizeof(jcf_aid));
        put(cb, jcf_aid, sizeof(jcf_aid));
    }
    end(cb, TSE_CAP_IMPORT);

    begin(cb, TSE_CAP_CONSTANTPOOL);
    put16(cb, cp_count);
    if (n) {
        const uint8_t fixed[8] = {0x06, 0x80, CLS_APPLET, 0x00,
                                  0x03, 0x80, CLS_APPLET, TOK_REGISTER};
        put(cb, fixed, sizeof(fixed));
        for (size_t i = 0; i < n; i++) {
            put8(cb, 0x01); /* Classref, internal */
            put16(cb, CLASS_OFF(i));
            put8(cb, 0x00);
            put8(cb, 0x06); /* StaticMethodref, internal */
            put8(cb, 0x00);
            put16(cb, METHOD_OFF(i));
        }
    }
    end(cb, TSE_CAP_CONSTANTPOOL);

    begin(cb, TSE_CAP_CLASS);
    for (size_t i = 0; i < n; i++) {
        put8(cb, 0x00);                /* flags, interface_count */
        put8(cb, 0x80);                /* super: javacard.framework… */
        put8(cb, CLS_APPLET);          /* …Applet */
        put8(cb, 0);                   /* declared_instance_size */
        put8(cb, 0xFF);                /* first_reference_token: none */
        put8(cb, 0);                   /* reference_count */
        put8(cb, TOK_PROCESS);         /* public_method_table_base */
        put8(cb, 1);                   /* public_method_table_count: process() */
        put8(cb, 0);                   /* package_method_table_base */
        put8(cb, 0);                   /* package_method_table_count */
        put16(cb, METHOD_OFF(i) + 22); /* process() */
    }
    end(cb, TSE_CAP_CLASS);

    begin(cb, TSE_CAP_METHOD);
    put8(cb, 0); /* handler_count */
    for (size_t i = 0; i < n; i++) {
        unsigned cls = 2 + 2 * (unsigned)i, ctor = cls + 1;
        /* constructor: aload_0; invokespecial Applet.<init>; aload_0; invokevirtual
         * register(); return */
        const uint8_t init[11] = {0x01, 0x10, 0x18, 0x8C, 0x00, 0x00, 0x18, 0x8B, 0x00, 0x01, 0x7A};
        /* install: new M; dup; invokespecial M.<init>; pop; return */
        const uint8_t inst[11] = {0x02,          0x30, 0x8F, (uint8_t)(cls >> 8),
                                  (uint8_t)cls,  0x3D, 0x8C, (uint8_t)(ctor >> 8),
                                  (uint8_t)ctor, 0x3B, 0x7A};
        /* process: return */
        const uint8_t proc[3] = {0x00, 0x20, 0x7A};
        put(cb, init, sizeof(init));
        put(cb, inst, sizeof(inst));
        put(cb, proc, sizeof(proc));
    }
    end(cb, TSE_CAP_METHOD);

    begin(cb, TSE_CAP_STATICFIELD); /* no static fields at all */
    for (int k = 0; k < 5; k++)
        put16(cb, 0);
    end(cb, TSE_CAP_STATICFIELD);

    /* the 2-byte constant pool indices in the Method component, as jumps from the previous */
    begin(cb, TSE_CAP_REFLOCATION);
    put16(cb, 0);
    put16(cb, 4 * (unsigned)n);
    for (size_t i = 0; i < n; i++) {
        put8(cb, i == 0 ? METHOD_OFF(0) + 4 : MODULE_METHODS - 18 + 4);
        put8(cb, 4);
        put8(cb, 6);
        put8(cb, 4);
    }
    end(cb, TSE_CAP_REFLOCATION);

    /* Descriptor: the classes and the types of everything referenced */
    unsigned td = 2 + 2 * cp_count, t_void = td, t_install = td + 2, t_process = td + 5;
    begin(cb, TSE_CAP_DESCRIPTOR);
    put8(cb, (unsigned)n);
    for (size_t i = 0; i < n; i++) {
        unsigned m = METHOD_OFF(i);
        put8(cb, (unsigned)i); /* class token */
        put8(cb, 0x01);        /* ACC_PUBLIC */
        put16(cb, CLASS_OFF(i));
        put8(cb, 0);  /* interface_count */
        put16(cb, 0); /* field_count */
        put16(cb, 3); /* method_count */
        /* token, access, method_offset, type_offset, bytecode_count, handlers, handler index */
        put8(cb, 0xFF);
        put8(cb, 0x82); /* ACC_INIT | ACC_PRIVATE */
        put16(cb, m);
        put16(cb, t_void);
        put16(cb, 9);
        put16(cb, 0);
        put16(cb, 0);
        put8(cb, 0x00);
        put8(cb, 0x09); /* ACC_PUBLIC | ACC_STATIC */
        put16(cb, m + 11);
        put16(cb, t_install);
        put16(cb, 9);
        put16(cb, 0);
        put16(cb, 0);
        put8(cb, TOK_PROCESS);
        put8(cb, 0x01);
        put16(cb, m + 22);
        put16(cb, t_process);
        put16(cb, 1);
        put16(cb, 0);
        put16(cb, 0);
    }
    put16(cb, cp_count);
    for (unsigned k = 0; k < cp_count; k++)
        put16(cb, k >= 2 && k % 2 == 0 ? 0xFFFF : t_void); /* classes have no type */
    if (n) {
        /* ()V; ([BSB)V; (Ljavacard/framework/APDU;)V as type descriptor nibbles */
        const uint8_t types[9] = {0x01, 0x10, 0x04, 0xB4, 0x31, 0x06, 0x68, 0x00, 0xA1};
        put(cb, types, sizeof(types));
    }
    end(cb, TSE_CAP_DESCRIPTOR);

    /* Directory last: it lists the sizes of all the others (CAP 2.1: tags 1 to 11) */
    cb->len[TSE_CAP_DIRECTORY] = 3 + 2 * 11 + 6 + 3;
    begin(cb, TSE_CAP_DIRECTORY);
    for (uint8_t t = 1; t <= TSE_CAP_DESCRIPTOR; t++)
        put16(cb, cb->len[t] ? (unsigned)cb->len[t] - 3 : 0);
    for (int k = 0; k < 3; k++)
        put16(cb, 0); /* static field image, array init count and size */
    put8(cb, n ? 1 : 0);
    put8(cb, (unsigned)n);
    put8(cb, 0); /* custom components */
    end(cb, TSE_CAP_DIRECTORY);
#undef CLASS_OFF
#undef METHOD_OFF
}

/* The order in which gp and GPShell concatenate component files into the LFDB. */
static const uint8_t load_order[] = {
    TSE_CAP_HEADER,       TSE_CAP_DIRECTORY,   TSE_CAP_IMPORT,      TSE_CAP_APPLET,
    TSE_CAP_CLASS,        TSE_CAP_METHOD,      TSE_CAP_STATICFIELD, TSE_CAP_EXPORT,
    TSE_CAP_CONSTANTPOOL, TSE_CAP_REFLOCATION, TSE_CAP_DESCRIPTOR,
};

int tse_cap_build_lfdb(const struct tse_package_def *pkg, unsigned flags, uint8_t *out, size_t cap)
{
    if (check_pkg(pkg) || !out)
        return TSE_ERR_INVALID_ARG;
    struct capbuild *cb = malloc(sizeof(*cb));
    if (!cb)
        return TSE_ERR_NO_MEMORY;
    build(pkg, cb);
    int rc = 0;
    size_t n = 0;
    for (size_t k = 0; k < sizeof(load_order) && !cb->over; k++) {
        uint8_t t = load_order[k];
        if (!cb->len[t] || (t == TSE_CAP_DESCRIPTOR && (flags & TSE_CAP_NO_DESCRIPTOR)))
            continue;
        if (cb->len[t] > cap - n) {
            rc = TSE_ERR_BUFFER_TOO_SMALL;
            break;
        }
        memcpy(out + n, cb->buf + cb->off[t], cb->len[t]);
        n += cb->len[t];
    }
    if (cb->over)
        rc = TSE_ERR_INVALID_ARG; /* cannot happen with TSE_CAP_MAX_APPLETS modules */
    free(cb);
    return rc ? rc : (int)n;
}

int tse_cap_load_data(const uint8_t *lfdb, size_t len, uint8_t *out, size_t cap)
{
    if ((!lfdb && len) || !out || len > 0xFFFFFFu)
        return TSE_ERR_INVALID_ARG;
    struct tse_tlv_writer w;
    tse_tlv_writer_init(&w, out, cap);
    tse_tlv_put(&w, 0xC4, lfdb, len);
    return tse_tlv_finish(&w);
}

const struct tse_package_def *tse_cap_find_package(const char *what)
{
    if (!what)
        return NULL;
    uint8_t aid[TSE_AID_MAX + 1];
    int alen = tse_hex_decode(what, aid, sizeof(aid));
    for (size_t i = 0; tse_native_packages[i]; i++) {
        const struct tse_package_def *p = tse_native_packages[i];
        if (p->name && strcmp(p->name, what) == 0)
            return p;
        if (alen > 0 && (size_t)alen == p->aid_len && memcmp(aid, p->aid, p->aid_len) == 0)
            return p;
    }
    return NULL;
}

/* ---- Host side: CAP files (ZIP)
 * ------------------------------------------------------------------ */

static void set_err(char *err, size_t errlen, const char *fmt, const char *a, const char *b)
{
    if (err && errlen)
        snprintf(err, errlen, fmt, a, b);
}

/* Manifest attribute lines are at most 72 bytes; longer ones continue after "\n ". */
static void mf_line(char *mf, size_t cap, size_t *n, const char *line)
{
    size_t len = strlen(line), col = 0;
    for (size_t i = 0; i < len && *n + 4 < cap; i++) {
        if (col == 72) {
            mf[(*n)++] = '\n';
            mf[(*n)++] = ' ';
            col = 1;
        }
        mf[(*n)++] = line[i];
        col++;
    }
    if (*n + 1 < cap)
        mf[(*n)++] = '\n';
    mf[*n] = '\0';
}

/* "0xa0:0x00:…", the converter's form (out: 5 * len bytes) */
static void aid_colons(const uint8_t *aid, size_t len, char *out)
{
    char *p = out;
    *p = '\0';
    for (size_t i = 0; i < len; i++)
        p += sprintf(p, "%s0x%02x", i ? ":" : "", aid[i]);
}

static size_t manifest(const struct tse_package_def *pkg, char *mf, size_t cap)
{
    char line[256], aid[5 * TSE_AID_MAX + 1], path[128];
    size_t n = 0, i;
    mf[0] = '\0';
    for (i = 0; pkg->name[i] && i + 1 < sizeof(path); i++)
        path[i] = pkg->name[i] == '.' ? '/' : pkg->name[i];
    path[i] = '\0';
    mf_line(mf, cap, &n, "Manifest-Version: 1.0");
    mf_line(mf, cap, &n, "Created-By: tse-cap");
    mf_line(mf, cap, &n, "");
    snprintf(line, sizeof(line), "Name: %s", path);
    mf_line(mf, cap, &n, line);
    mf_line(mf, cap, &n, "Java-Card-Converter-Version: tse-cap");
    mf_line(mf, cap, &n, "Java-Card-Converter-Provider: tse (stub of a native package)");
    mf_line(mf, cap, &n, "Java-Card-CAP-File-Version: 2.1");
    snprintf(line, sizeof(line), "Java-Card-Package-Version: %u.%u", (unsigned)pkg->version_major,
             (unsigned)pkg->version_minor);
    mf_line(mf, cap, &n, line);
    snprintf(line, sizeof(line), "Java-Card-Package-Name: %s", pkg->name);
    mf_line(mf, cap, &n, line);
    aid_colons(pkg->aid, pkg->aid_len, aid);
    snprintf(line, sizeof(line), "Java-Card-Package-AID: %s", aid);
    mf_line(mf, cap, &n, line);
    for (i = 0; i < pkg->n_modules; i++) {
        snprintf(line, sizeof(line), "Java-Card-Applet-%zu-Name: %.100s", i + 1,
                 pkg->modules[i].name ? pkg->modules[i].name : "");
        mf_line(mf, cap, &n, line);
        aid_colons(pkg->modules[i].aid, pkg->modules[i].aid_len, aid);
        snprintf(line, sizeof(line), "Java-Card-Applet-%zu-AID: %s", i + 1, aid);
        mf_line(mf, cap, &n, line);
    }
    if (pkg->n_modules) {
        aid_colons(jcf_aid, sizeof(jcf_aid), aid);
        snprintf(line, sizeof(line), "Java-Card-Imported-Package-1-AID: %s", aid);
        mf_line(mf, cap, &n, line);
        snprintf(line, sizeof(line), "Java-Card-Imported-Package-1-Version: %u.%u", JCF_MAJOR,
                 JCF_MINOR);
        mf_line(mf, cap, &n, line);
    }
    mf_line(mf, cap, &n, "Java-Card-Integer-Support-Required: FALSE");
    mf_line(mf, cap, &n, "");
    return n;
}

/* 2024-01-01 00:00:00 in MS-DOS form, so that the archive does not depend on the clock or
 * the time zone. */
#define DOS_TIME 0x0000
#define DOS_DATE ((2024 - 1980) << 9 | 1 << 5 | 1)

static int zip_put_entry(zip_t *za, const char *name, const void *data, size_t len)
{
    zip_source_t *src = zip_source_buffer(za, data, len, 0);
    if (!src)
        return -1;
    zip_int64_t idx = zip_file_add(za, name, src, ZIP_FL_OVERWRITE | ZIP_FL_ENC_UTF_8);
    if (idx < 0) {
        zip_source_free(src);
        return -1;
    }
    if (zip_file_set_dostime(za, (zip_uint64_t)idx, DOS_TIME, DOS_DATE, 0) != 0)
        return -1;
    return 0;
}

int tse_cap_write_file(const struct tse_package_def *pkg, const char *path, char *err,
                       size_t errlen)
{
    if (check_pkg(pkg) || !path) {
        set_err(err, errlen, "%s%s", "not a package a CAP file can describe", "");
        return TSE_ERR_INVALID_ARG;
    }
    struct capbuild *cb = malloc(sizeof(*cb));
    char *mf = malloc(4096);
    if (!cb || !mf) {
        free(cb);
        free(mf);
        return TSE_ERR_NO_MEMORY;
    }
    build(pkg, cb);
    size_t mf_len = manifest(pkg, mf, 4096);
    int rc = 0, zerr = 0;
    zip_t *za = cb->over ? NULL : zip_open(path, ZIP_CREATE | ZIP_TRUNCATE, &zerr);
    if (!za) {
        zip_error_t ze;
        zip_error_init_with_code(&ze, zerr);
        set_err(err, errlen, "%s: %s", path,
                cb->over ? "package too large" : zip_error_strerror(&ze));
        zip_error_fini(&ze);
        free(cb);
        free(mf);
        return TSE_ERR_IO;
    }
    char name[160], dir[128];
    size_t i;
    for (i = 0; pkg->name[i] && i + 1 < sizeof(dir); i++)
        dir[i] = pkg->name[i] == '.' ? '/' : pkg->name[i];
    dir[i] = '\0';
    if (zip_put_entry(za, "META-INF/MANIFEST.MF", mf, mf_len))
        rc = TSE_ERR_IO;
    /* the entries in tag order, as the Java Card converter writes them */
    for (uint8_t t = 1; t <= TSE_CAP_DESCRIPTOR && !rc; t++) {
        if (!cb->len[t])
            continue;
        snprintf(name, sizeof(name), "%s/javacard/%s.cap", dir, comp_names[t]);
        if (zip_put_entry(za, name, cb->buf + cb->off[t], cb->len[t]))
            rc = TSE_ERR_IO;
    }
    if (rc) {
        set_err(err, errlen, "%s: %s", path, zip_strerror(za));
        zip_discard(za);
    } else if (zip_close(za) != 0) {
        set_err(err, errlen, "%s: %s", path, zip_strerror(za));
        zip_discard(za);
        rc = TSE_ERR_IO;
    }
    free(cb);
    free(mf);
    return rc;
}

#define COMPONENT_FILE_MAX (1u << 20)

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && memcmp(s + n - k, suffix, k) == 0;
}

int tse_cap_read_file(const char *path, unsigned flags, uint8_t **lfdb, size_t *lfdb_len,
                      struct tse_cap_zip_info *zi, char *err, size_t errlen)
{
    if (!path || !lfdb || !lfdb_len)
        return TSE_ERR_INVALID_ARG;
    *lfdb = NULL;
    *lfdb_len = 0;
    struct tse_cap_zip_info local;
    if (!zi)
        zi = &local;
    memset(zi, 0, sizeof(*zi));
    int zerr = 0;
    zip_t *za = zip_open(path, ZIP_RDONLY, &zerr);
    if (!za) {
        zip_error_t ze;
        zip_error_init_with_code(&ze, zerr);
        set_err(err, errlen, "%s: %s", path, zip_error_strerror(&ze));
        zip_error_fini(&ze);
        return TSE_ERR_IO;
    }
    zi->has_manifest = zip_name_locate(za, "META-INF/MANIFEST.MF", 0) >= 0;
    /* The package directory is the one of the first …/javacard/Header.cap, as in gp. */
    zip_int64_t entries = zip_get_num_entries(za, 0);
    bool found = false;
    for (zip_int64_t e = 0; e < entries && !found; e++) {
        const char *nm = zip_get_name(za, (zip_uint64_t)e, 0);
        static const char suffix[] = "/javacard/Header.cap";
        if (!nm || !ends_with(nm, suffix))
            continue;
        size_t dl = strlen(nm) - (sizeof(suffix) - 1);
        if (dl == 0 || dl >= sizeof(zi->package_path))
            continue;
        memcpy(zi->package_path, nm, dl);
        zi->package_path[dl] = '\0';
        found = true;
    }
    if (!found) {
        set_err(err, errlen, "%s: %s", path,
                "no <package>/javacard/Header.cap entry: not a CAP file");
        zip_close(za);
        return TSE_ERR_PARSE;
    }
    int rc = 0;
    uint8_t *buf = NULL;
    size_t total = 0;
    char name[200], what[120];
    for (size_t k = 0; k < sizeof(load_order) && !rc; k++) {
        uint8_t t = load_order[k];
        struct zip_stat zs;
        snprintf(name, sizeof(name), "%s/javacard/%s.cap", zi->package_path, comp_names[t]);
        zip_stat_init(&zs);
        if (zip_stat(za, name, 0, &zs) != 0)
            continue;
        zi->present |= (uint16_t)(1u << t);
        if (!(zs.valid & ZIP_STAT_SIZE) || zs.size > COMPONENT_FILE_MAX || zs.size < 3) {
            snprintf(what, sizeof(what), "%s.cap: %s", comp_names[t],
                     zs.size < 3 ? "shorter than a component header" : "larger than 1 MiB");
            set_err(err, errlen, "%s: %s", path, what);
            rc = TSE_ERR_PARSE;
            break;
        }
        size_t sz = (size_t)zs.size;
        zi->file_sizes[t] = (uint32_t)sz;
        if (t == TSE_CAP_DESCRIPTOR && (flags & TSE_CAP_NO_DESCRIPTOR))
            continue;
        uint8_t *nb = realloc(buf, total + sz);
        if (!nb) {
            rc = TSE_ERR_NO_MEMORY;
            break;
        }
        buf = nb;
        zip_file_t *zf = zip_fopen(za, name, 0);
        zip_int64_t got = zf ? zip_fread(zf, buf + total, sz) : -1;
        if (zf)
            zip_fclose(zf);
        if (got < 0 || (size_t)got != sz) {
            snprintf(what, sizeof(what), "%s.cap: cannot be read (%s)", comp_names[t],
                     zip_strerror(za));
            set_err(err, errlen, "%s: %s", path, what);
            rc = TSE_ERR_IO;
            break;
        }
        const uint8_t *c = buf + total;
        uint32_t field = (uint32_t)c[1] << 8 | c[2];
        if (c[0] != t || field != sz - 3) {
            snprintf(what, sizeof(what),
                     "%s.cap: starts with tag %u and size %u, expected tag %u and size %zu",
                     comp_names[t], (unsigned)c[0], (unsigned)field, (unsigned)t, sz - 3);
            set_err(err, errlen, "%s: %s", path, what);
            rc = TSE_ERR_PARSE;
            break;
        }
        total += sz;
    }
    zip_close(za);
    if (rc) {
        free(buf);
        return rc;
    }
    *lfdb = buf;
    *lfdb_len = total;
    return 0;
}
