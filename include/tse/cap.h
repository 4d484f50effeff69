/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file cap.h
 * @brief Java Card CAP files and the GlobalPlatform LOAD stream that carries them.
 *
 * Two halves share the component rules (docs/tse-cap.md):
 *
 * - **Card side: a streaming parser of the LOAD data** (GlobalPlatform card specification,
 *   LOAD command): zero or more DAP blocks `E2 L { 4F L SD-AID ; C3 L signature }`, then
 *   `C4 <BER length> <load file data block>`. The load file data block (LFDB) is a sequence
 *   of CAP components `tag(1) size(2) info[size]` (JCVM specification, chapter 6). The
 *   parser needs no heap and keeps all its state in one fixed-size, pointer-free struct
 *   (struct tse_cap_stream) that the card keeps in transient memory between LOAD commands:
 *   it may be copied with memcpy(). Any split of the stream across tse_cap_stream_feed()
 *   calls gives the same result, byte for byte.
 *
 * - **Host side: CAP files** (ZIP archives, through libzip): tse_cap_write_file() writes a
 *   minimal but well-formed CAP file for a native package of this build, so that real tools
 *   (`gp --install`, GPShell `install -file`) send the card a load file it can bind to its
 *   native code; tse_cap_read_file() rebuilds the LFDB from any CAP file the way those tools
 *   do.
 */
#ifndef TSE_CAP_H
#define TSE_CAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tse/apdu.h"
#include "tse/applet.h"
#include "tse/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Component tags (JCVM specification, table 6-1) ---------------------------------------- */

#define TSE_CAP_HEADER       1
#define TSE_CAP_DIRECTORY    2
#define TSE_CAP_APPLET       3
#define TSE_CAP_IMPORT       4
#define TSE_CAP_CONSTANTPOOL 5
#define TSE_CAP_CLASS        6
#define TSE_CAP_METHOD       7
#define TSE_CAP_STATICFIELD  8
#define TSE_CAP_REFLOCATION  9
#define TSE_CAP_EXPORT       10
#define TSE_CAP_DESCRIPTOR   11
#define TSE_CAP_DEBUG        12 /**< CAP format 2.2 and later; never part of a load */
#define TSE_CAP_STATICRES    13 /**< Static Resources, CAP format 2.3; u4 size field */

/** Header flags (JCVM table 6-3). */
#define TSE_CAP_ACC_INT      0x01u
#define TSE_CAP_ACC_EXPORT   0x02u
#define TSE_CAP_ACC_APPLET   0x04u
#define TSE_CAP_ACC_EXTENDED 0x08u /**< CAP 2.3 extended format: not supported */

/** Component file name without ".cap" ("Header", "RefLocation"…), or NULL for other tags. */
const char *tse_cap_component_name(uint8_t tag);

/* ---- Card side: streaming parser of the LOAD data ------------------------------------------- */

#define TSE_CAP_MAX_APPLETS 16 /**< applets a load file may declare (more: rejected) */
#define TSE_CAP_MAX_IMPORTS 8  /**< imported packages recorded (more are counted only) */
#define TSE_CAP_MAX_DAP     4  /**< DAP blocks recorded (more are counted only) */
#define TSE_CAP_NAME_MAX    64 /**< bytes of the package name kept (the length is exact) */
#define TSE_CAP_MAX_TAG     13 /**< highest component tag a load may carry */

/** Why the stream was rejected (st->reason). Each has its own text (tse_cap_strerror()). */
enum tse_cap_reason {
    TSE_CAP_OK = 0,
    TSE_CAP_ERR_EMPTY,            /**< finish: no byte at all */
    TSE_CAP_ERR_TRUNCATED,        /**< finish: the stream stops inside a data object */
    TSE_CAP_ERR_NO_LFDB,          /**< finish: DAP blocks but no C4 object */
    TSE_CAP_ERR_LOAD_TAG,         /**< a top-level tag other than E2, C4 or D4 */
    TSE_CAP_ERR_CIPHERED,         /**< D4: ciphered load file data block, not supported */
    TSE_CAP_ERR_BER_LENGTH,       /**< length field 80 (indefinite) or 84..FF */
    TSE_CAP_ERR_DAP,              /**< DAP block not `4F AID ; C3 signature`, or AID length */
    TSE_CAP_ERR_TRAILING,         /**< bytes after the C4 object */
    TSE_CAP_ERR_TOO_LONG,         /**< more than 2^32 - 1 bytes */
    TSE_CAP_ERR_HEADER_FIRST,     /**< the first component is not the Header */
    TSE_CAP_ERR_MAGIC,            /**< Header magic is not DECAFFED */
    TSE_CAP_ERR_CAP_VERSION,      /**< CAP format other than 2.1, 2.2, 2.3 */
    TSE_CAP_ERR_EXTENDED,         /**< extended-format CAP (flag 08): not supported */
    TSE_CAP_ERR_HEADER,           /**< Header malformed: size, AID length, package name */
    TSE_CAP_ERR_UNKNOWN_TAG,      /**< component tag undefined for this CAP format (or custom) */
    TSE_CAP_ERR_DEBUG,            /**< Debug component: never part of a load */
    TSE_CAP_ERR_DUPLICATE,        /**< a component appears twice */
    TSE_CAP_ERR_ORDER,            /**< components out of the JCVM install order */
    TSE_CAP_ERR_OVERRUN,          /**< a component runs past the end of the C4 value */
    TSE_CAP_ERR_DIRECTORY,        /**< Directory malformed or disagreeing with the components */
    TSE_CAP_ERR_IMPORT,           /**< Import component malformed */
    TSE_CAP_ERR_APPLET,           /**< Applet component malformed (count 0, AID length, size) */
    TSE_CAP_ERR_TOO_MANY_APPLETS, /**< more than TSE_CAP_MAX_APPLETS applets */
    TSE_CAP_ERR_FLAGS,            /**< Header flags disagree with the Applet/Export components */
    TSE_CAP_ERR_MISSING,          /**< a mandatory component is missing (st->err_tag) */
    TSE_CAP_ERR_COUNT
};

/** Text of a reason (static, never NULL; "unknown reason" out of range). */
const char *tse_cap_strerror(int reason);

/**
 * The status word a card answers for a rejected LOAD: 6A81 (function not supported) for
 * TSE_CAP_ERR_CIPHERED and TSE_CAP_ERR_EXTENDED, 6A84 (not enough memory) for
 * TSE_CAP_ERR_TOO_MANY_APPLETS and TSE_CAP_ERR_TOO_LONG, 6A80 (wrong data) for every other
 * reason, 9000 for TSE_CAP_OK.
 */
uint16_t tse_cap_reason_sw(int reason);

struct tse_cap_component {
    uint8_t tag;
    uint32_t offset; /**< of its tag byte in the LFDB */
    uint32_t size;   /**< value of its size field (info bytes, without tag and size) */
};

struct tse_cap_applet {
    struct tse_aid aid;
    uint16_t install_method_offset; /**< into the Method component's info */
};

struct tse_cap_import {
    struct tse_aid aid;
    uint8_t minor, major;
};

struct tse_cap_dap {
    struct tse_aid sd;   /**< 4F: the security domain whose key verifies the signature */
    uint32_t sig_len;    /**< C3: signature length (the bytes are not kept) */
    uint32_t sig_offset; /**< stream offset of the signature's first byte (0 until known) */
};

/** What the stream carried. Filled as the bytes arrive; complete after finish() returns 0. */
struct tse_cap_info {
    uint32_t stream_len;  /**< bytes fed (DAP blocks and the C4 object) */
    uint32_t lfdb_len;    /**< length of the C4 value: the load file data block */
    uint32_t lfdb_offset; /**< stream offset of the LFDB's first byte (0 until the C4 header is
                               complete): a caller hashing the LFDB block by block starts there */
    /** The Header component arrived complete and valid: the CAP format, flags, package
     * version, AID and name below are final (a card can check the AID against INSTALL [for
     * load] from this point on, before the last block). */
    bool header_done;
    uint8_t cap_minor, cap_major;    /**< CAP format, e.g. 2.2 */
    uint8_t flags;                   /**< TSE_CAP_ACC_* */
    uint8_t pkg_minor, pkg_major;    /**< package version */
    struct tse_aid package;          /**< package (load file) AID */
    bool has_name;                   /**< CAP 2.2+: the Header names the package */
    uint8_t name_len;                /**< its exact length */
    char name[TSE_CAP_NAME_MAX + 1]; /**< first TSE_CAP_NAME_MAX bytes, NUL-terminated */
    uint8_t n_applets;
    struct tse_cap_applet applets[TSE_CAP_MAX_APPLETS];
    uint8_t n_imports; /**< count in the Import component (only the first 8 are kept) */
    struct tse_cap_import imports[TSE_CAP_MAX_IMPORTS];
    uint8_t n_components; /**< components in the LFDB, in stream order */
    struct tse_cap_component components[TSE_CAP_MAX_TAG];
    uint8_t n_dap; /**< DAP blocks complete (only the first TSE_CAP_MAX_DAP are kept); the
                        entry at index n_dap is the block in progress: its `sd` is set once its
                        4F is complete, its `sig_offset` and `sig_len` once the C3 length is */
    struct tse_cap_dap dap[TSE_CAP_MAX_DAP];
    /** Component sizes the Directory declares, by tag (index 0 unused; 12 Debug, 13 Static
     * Resources). The Descriptor may be declared but not loaded: gp leaves it out. */
    uint32_t dir_sizes[TSE_CAP_MAX_TAG + 1];
};

/**
 * Parser state. Plain data, no pointers: keep it anywhere (transient RAM) and copy it freely.
 * Fields other than `info`, `reason`, `err_offset` and `err_tag` are private.
 */
struct tse_cap_stream {
    struct tse_cap_info info;
    uint8_t reason;      /**< enum tse_cap_reason of the failure, TSE_CAP_OK otherwise */
    uint8_t err_tag;     /**< the component concerned (0 when none) */
    uint32_t err_offset; /**< stream offset of the byte that revealed the failure */
    /* private */
    uint8_t phase, top_tag, len_need, len_have, in_tag, dap_state;
    uint32_t len_acc;
    uint32_t value_left; /* of the current E2 or C4 value */
    uint32_t inner_left; /* of the current object inside E2 */
    uint8_t comp_hdr[5], comp_hdr_len, comp_hdr_need, comp_rank;
    uint32_t comp_size, comp_pos;
    uint16_t seen;                  /* bit t: component tag t seen */
    uint8_t sub_field, sub_aid_len; /* entries of Import / Applet / Directory custom list */
    uint16_t sub_done, sub_count;
    uint32_t acc; /* multi-byte field being assembled */
    uint8_t dir_imports, dir_applets, dir_customs;
    struct tse_aid dap_sd;
};

/** Start a new stream (forgets everything). @retval 0; TSE_ERR_INVALID_ARG st is NULL */
int tse_cap_stream_init(struct tse_cap_stream *st);

/**
 * Feed the next `len` bytes of the LOAD data (the data fields of the LOAD commands, in order).
 * @retval 0 accepted so far
 * @retval TSE_ERR_PARSE rejected: st->reason says why (sticky: later calls return the same)
 * @retval TSE_ERR_STATE the stream was already finished
 * @retval TSE_ERR_INVALID_ARG st NULL, or data NULL with len > 0
 */
int tse_cap_stream_feed(struct tse_cap_stream *st, const uint8_t *data, size_t len);

/**
 * End of the stream (the LOAD with P1 = 80 was fed). Copies the result into *info (may be
 * NULL). Calling it again returns the same result.
 * @retval 0 a complete, consistent load file: st->info / *info describe it
 * @retval TSE_ERR_PARSE incomplete or rejected: st->reason (TSE_CAP_ERR_EMPTY,
 *         TSE_CAP_ERR_TRUNCATED, TSE_CAP_ERR_NO_LFDB, or the earlier failure)
 * @retval TSE_ERR_INVALID_ARG st NULL
 */
int tse_cap_stream_finish(struct tse_cap_stream *st, struct tse_cap_info *info);

/* ---- Host side: LFDB, LOAD stream and CAP files ---------------------------------------------- */

/** Leave out the Descriptor, as gp does (GPShell sends it). */
#define TSE_CAP_NO_DESCRIPTOR 0x01u

/**
 * Build the load file data block of the CAP tse_cap_write_file() writes for `pkg`:
 * components Header, Directory, Import, Applet (when the package has modules), Class, Method,
 * StaticField, ConstantPool, RefLocation and, unless `flags` has TSE_CAP_NO_DESCRIPTOR,
 * Descriptor.
 * @retval >0 bytes written to out
 * @retval TSE_ERR_INVALID_ARG pkg NULL, an AID outside 5..16 bytes, more than
 *         TSE_CAP_MAX_APPLETS modules, or a name that is not a dotted Java package name
 * @retval TSE_ERR_BUFFER_TOO_SMALL cap too small (8 KiB always suffices)
 */
int tse_cap_build_lfdb(const struct tse_package_def *pkg, unsigned flags, uint8_t *out, size_t cap);

/**
 * Wrap an LFDB in the LOAD data object `C4 <BER length> lfdb` (no DAP block).
 * @retval >0 bytes written; TSE_ERR_BUFFER_TOO_SMALL (needs len + 5); TSE_ERR_INVALID_ARG
 */
int tse_cap_load_data(const uint8_t *lfdb, size_t len, uint8_t *out, size_t cap);

/** The built-in package whose name ("tse.diag") or AID (hex) is `what`, or NULL. */
const struct tse_package_def *tse_cap_find_package(const char *what);

/**
 * Write a CAP file for a native package: a ZIP with META-INF/MANIFEST.MF and
 * `<name with / for .>/javacard/<Component>.cap` entries. The output is reproducible (fixed
 * entry times). Its Java Card view: one class per module, extending javacard.framework.Applet,
 * whose install() registers an instance and whose process() returns; the card binds the
 * package AID to its native code instead of running it.
 * @retval 0; TSE_ERR_INVALID_ARG (as tse_cap_build_lfdb()); TSE_ERR_IO the file cannot be
 *         written (message in err); TSE_ERR_NO_MEMORY
 */
int tse_cap_write_file(const struct tse_package_def *pkg, const char *path, char *err,
                       size_t errlen);

/** What tse_cap_read_file() found in the ZIP. */
struct tse_cap_zip_info {
    char package_path[128]; /**< directory that holds javacard/ ("tse/diag") */
    bool has_manifest;
    uint16_t present;                         /**< bit t: component file of tag t exists */
    uint32_t file_sizes[TSE_CAP_MAX_TAG + 1]; /**< bytes of each component file */
};

/**
 * Read a CAP file and rebuild its LFDB as the GlobalPlatform tools do: the component files
 * of the package directory in the order Header, Directory, Import, Applet, Class, Method,
 * StaticField, Export, ConstantPool, RefLocation, Descriptor (left out with
 * TSE_CAP_NO_DESCRIPTOR, as gp does); Debug never. Each component file must start with its
 * own tag and a size field that matches the file length. *lfdb is malloc()ed: free() it.
 * @retval 0; `zi` (may be NULL) tells what the archive holds
 * @retval TSE_ERR_IO the file cannot be opened or is not a ZIP (message in err)
 * @retval TSE_ERR_PARSE no `…/javacard/Header.cap`, a component file whose tag or size field
 *         is wrong, or one larger than 1 MiB (message in err)
 * @retval TSE_ERR_NO_MEMORY; TSE_ERR_INVALID_ARG
 */
int tse_cap_read_file(const char *path, unsigned flags, uint8_t **lfdb, size_t *lfdb_len,
                      struct tse_cap_zip_info *zi, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif

#endif
