/*
 * livepeer_schema: see livepeer_schema.h. The tables below mirror the
 * inbound zod schemas of the `livepeer` SDK 3.5.0 as it runs on zod 4
 * (src/models/components/task.ts, asset.ts, transcodeprofile.ts,
 * exporttaskparams.ts, ipfsexportparams.ts, inputcreatorid.ts,
 * encryptionoutput.ts ...), one node per zod schema, defined leaves first
 * as the SDK's files are. What zod does, and so what a node means:
 *   - z.object: a JSON object (not an array, not null); each required key
 *     present and each present key conforming; other keys are dropped by
 *     the SDK, so they do not matter. z.object({}) takes any object.
 *   - .optional(), .default(v): the key may be absent, never null.
 *   - .nullable(): null also conforms.
 *   - z.number(): any JSON number; .int(): a safe integer (zod 4), so
 *     |n| <= 2^53 - 1 with no fraction.
 *   - z.union: any one option conforms. z.record(z.string(), X): an object
 *     whose members all conform to X, except a key `__proto__`, which zod
 *     skips. z.any(): anything, null too.
 * The checker recurses along the tables, never along the data, so its
 * depth is the tables' (under 10), whatever the task holds.
 */
#include "livepeer_schema.h"

#include <math.h>
#include <string.h>

enum lps_kind {
    LPS_ANY,
    LPS_STRING,
    LPS_NUMBER,
    LPS_SAFEINT,
    LPS_BOOL,
    LPS_ENUM,
    LPS_OBJECT,
    LPS_ARRAY,
    LPS_RECORD,
    LPS_UNION,
};

struct lps;

struct lps_field {
    const char *key; /* NULL ends a table */
    bool required;
    const struct lps *schema;
};

/* One zod schema. */
struct lps {
    enum lps_kind kind;
    bool nullable;
    const char *const *values;        /* LPS_ENUM: the values, NULL-ended */
    const struct lps_field *fields;   /* LPS_OBJECT: the keys it checks; NULL: none */
    const struct lps *item;           /* LPS_ARRAY, LPS_RECORD: each element */
    const struct lps *const *options; /* LPS_UNION: NULL-ended */
};

#define REQ(k, s) \
    { (k), true, (s) }
#define OPT(k, s) \
    { (k), false, (s) }
#define END \
    { NULL, false, NULL }

static const struct lps any = {.kind = LPS_ANY};
static const struct lps string = {.kind = LPS_STRING};
static const struct lps number = {.kind = LPS_NUMBER};
static const struct lps safeint = {.kind = LPS_SAFEINT};
static const struct lps boolean = {.kind = LPS_BOOL};
/* z.object({}): EncryptionOutput, TaskExportData.content, Pinata's first option, ... */
static const struct lps object = {.kind = LPS_OBJECT};
static const struct lps string_array = {.kind = LPS_ARRAY, .item = &string};
static const struct lps string_record = {.kind = LPS_RECORD, .item = &string};
static const struct lps any_record = {.kind = LPS_RECORD, .item = &any};

/* transcodeprofile.ts: TranscodeProfile */
static const char *const profile_profiles[] = {"H264Baseline", "H264Main", "H264High",
                                               "H264ConstrainedHigh", NULL};
static const char *const profile_encoders[] = {"H.264", "HEVC", "VP8", "VP9", NULL};
static const struct lps profile_profile = {.kind = LPS_ENUM, .values = profile_profiles};
static const struct lps profile_encoder = {.kind = LPS_ENUM, .values = profile_encoders};
static const struct lps_field profile_fields[] = {
    OPT("width", &safeint),
    OPT("name", &string),
    OPT("height", &safeint),
    REQ("bitrate", &safeint),
    OPT("quality", &safeint),
    OPT("fps", &safeint),
    OPT("fpsDen", &safeint),
    OPT("gop", &string),
    OPT("profile", &profile_profile),
    OPT("encoder", &profile_encoder),
    END,
};
static const struct lps profile = {.kind = LPS_OBJECT, .fields = profile_fields};
static const struct lps profiles = {.kind = LPS_ARRAY, .item = &profile};

/* inputcreatorid.ts: InputCreatorId1 (also asset.ts's CreatorId) and InputCreatorId */
static const char *const creator_types[] = {"unverified", NULL};
static const struct lps creator_type = {.kind = LPS_ENUM, .values = creator_types};
static const struct lps_field creator_fields[] = {
    REQ("type", &creator_type),
    REQ("value", &string),
    END,
};
static const struct lps creator = {.kind = LPS_OBJECT, .fields = creator_fields};
static const struct lps *const input_creator_options[] = {&creator, &string, NULL};
static const struct lps input_creator = {.kind = LPS_UNION, .options = input_creator_options};

/* ipfsexportparams.ts: IpfsExportParams, its Pinata a union of {} and {apiKey} */
static const struct lps_field pinata_key_fields[] = {REQ("apiKey", &string), END};
static const struct lps pinata_key = {.kind = LPS_OBJECT, .fields = pinata_key_fields};
static const struct lps *const pinata_options[] = {&object, &pinata_key, NULL};
static const struct lps pinata = {.kind = LPS_UNION, .options = pinata_options};
static const struct lps_field ipfs_export_fields[] = {
    OPT("$ref", &any),
    OPT("pinata", &pinata),
    END,
};
static const struct lps ipfs_export = {.kind = LPS_OBJECT, .fields = ipfs_export_fields};

/* ---- Params ---- */

/* task.ts: Upload */
static const struct lps_field upload_fields[] = {
    OPT("url", &string),
    OPT("encryption", &object),
    OPT("c2pa", &boolean),
    OPT("profiles", &profiles),
    OPT("targetSegmentSizeSecs", &number),
    END,
};
static const struct lps upload = {.kind = LPS_OBJECT, .fields = upload_fields};

/* exporttaskparams.ts: ExportTaskParams, a union of {custom} and {ipfs} */
static const struct lps_field custom_fields[] = {
    REQ("url", &string),
    OPT("method", &string), /* .default("PUT") */
    OPT("headers", &string_record),
    END,
};
static const struct lps custom = {.kind = LPS_OBJECT, .fields = custom_fields};
static const struct lps_field export_custom_fields[] = {REQ("custom", &custom), END};
static const struct lps export_custom = {.kind = LPS_OBJECT, .fields = export_custom_fields};
static const struct lps_field export_ipfs_fields[] = {REQ("ipfs", &ipfs_export), END};
static const struct lps export_ipfs = {.kind = LPS_OBJECT, .fields = export_ipfs_fields};
static const struct lps *const export_options[] = {&export_custom, &export_ipfs, NULL};
static const struct lps export_params = {.kind = LPS_UNION, .options = export_options};

/* task.ts: TaskExportData */
static const struct lps_field export_data_fields[] = {
    REQ("content", &object),
    OPT("ipfs", &ipfs_export),
    OPT("type", &string),
    OPT("id", &string),
    END,
};
static const struct lps export_data = {.kind = LPS_OBJECT, .fields = export_data_fields};

/* task.ts: TranscodeFile and its TaskInput, TaskStorage, TaskOutputs */
static const struct lps_field url_fields[] = {OPT("url", &string), END};
static const struct lps url_object = {.kind = LPS_OBJECT, .fields = url_fields};
static const struct lps_field path_fields[] = {OPT("path", &string), END};
static const struct lps path_object = {.kind = LPS_OBJECT, .fields = path_fields};
static const struct lps_field outputs_fields[] = {
    OPT("hls", &path_object),
    OPT("mp4", &path_object),
    END,
};
static const struct lps outputs = {.kind = LPS_OBJECT, .fields = outputs_fields};
static const struct lps_field transcode_file_fields[] = {
    OPT("input", &url_object),
    OPT("storage", &url_object),
    OPT("outputs", &outputs),
    OPT("profiles", &profiles),
    OPT("targetSegmentSizeSecs", &number),
    OPT("creatorId", &input_creator),
    OPT("c2pa", &boolean),
    END,
};
static const struct lps transcode_file = {.kind = LPS_OBJECT, .fields = transcode_file_fields};

/* task.ts: Clip and its ClipStrategy, CatalystPipelineStrategy */
static const struct lps_field clip_strategy_fields[] = {
    OPT("startTime", &number),
    OPT("endTime", &number),
    OPT("playbackId", &string),
    END,
};
static const struct lps clip_strategy = {.kind = LPS_OBJECT, .fields = clip_strategy_fields};
static const char *const pipeline_strategies[] = {
    "catalyst",
    "catalyst_ffmpeg",
    "background_external",
    "background_mist",
    "fallback_external",
    "external",
    NULL,
};
static const struct lps pipeline_strategy = {.kind = LPS_ENUM, .values = pipeline_strategies};
static const struct lps_field clip_fields[] = {
    OPT("url", &string),
    OPT("clipStrategy", &clip_strategy),
    OPT("catalystPipelineStrategy", &pipeline_strategy),
    OPT("sessionId", &string),
    OPT("inputId", &string),
    END,
};
static const struct lps clip = {.kind = LPS_OBJECT, .fields = clip_fields};

/* task.ts: Params (its "transcode-file" the SDK renames transcodeFile) */
static const struct lps_field params_members[] = {
    OPT("upload", &upload),
    OPT("export", &export_params),
    OPT("exportData", &export_data),
    OPT("transcode-file", &transcode_file),
    OPT("clip", &clip),
    END,
};

/* ---- Output: asset.ts's Asset, for output.upload.assetSpec ---- */

static const char *const media_types[] = {"video", "audio", NULL};
static const struct lps media_type = {.kind = LPS_ENUM, .values = media_types};

/* playbackpolicy.ts: PlaybackPolicy (nullable in Asset) */
static const char *const policy_types[] = {"public", "jwt", "webhook", NULL};
static const struct lps policy_type = {.kind = LPS_ENUM, .values = policy_types};
static const struct lps_field policy_fields[] = {
    REQ("type", &policy_type),
    OPT("webhookId", &string),
    OPT("webhookContext", &any_record),
    OPT("refreshInterval", &number),
    OPT("allowedOrigins", &string_array),
    END,
};
static const struct lps policy = {.kind = LPS_OBJECT, .nullable = true, .fields = policy_fields};

/* asset.ts: Source, a union of Two (recording), Asset1 (url), Asset3 (directUpload, clip) */
static const char *const source_recording_types[] = {"recording", NULL};
static const struct lps source_recording_type = {.kind = LPS_ENUM,
                                                 .values = source_recording_types};
static const struct lps_field source_recording_fields[] = {
    REQ("type", &source_recording_type),
    REQ("sessionId", &string),
    END,
};
static const struct lps source_recording = {.kind = LPS_OBJECT, .fields = source_recording_fields};
static const char *const source_url_types[] = {"url", NULL};
static const struct lps source_url_type = {.kind = LPS_ENUM, .values = source_url_types};
static const struct lps_field source_url_fields[] = {
    REQ("type", &source_url_type),
    REQ("url", &string),
    OPT("gatewayUrl", &string),
    OPT("encryption", &object),
    END,
};
static const struct lps source_url = {.kind = LPS_OBJECT, .fields = source_url_fields};
static const char *const source_upload_types[] = {"directUpload", "clip", NULL};
static const struct lps source_upload_type = {.kind = LPS_ENUM, .values = source_upload_types};
static const struct lps_field source_upload_fields[] = {
    REQ("type", &source_upload_type), OPT("encryption", &object),
    OPT("sourceId", &string),         OPT("sessionId", &string),
    OPT("playbackId", &string),       OPT("requesterId", &string),
    OPT("assetId", &string),          END,
};
static const struct lps source_upload = {.kind = LPS_OBJECT, .fields = source_upload_fields};
static const struct lps *const source_options[] = {&source_recording, &source_url, &source_upload,
                                                   NULL};
static const struct lps source = {.kind = LPS_UNION, .options = source_options};

/* asset.ts: AssetStorage, with AssetIpfs, AssetSpec, IpfsFileInfo, StorageStatus */
static const char *const nft_templates[] = {"file", "player", NULL};
static const struct lps nft_template = {.kind = LPS_ENUM, .values = nft_templates};
static const struct lps_field ipfs_spec_fields[] = {
    OPT("nftMetadataTemplate", &nft_template), /* .default("file") */
    OPT("nftMetadata", &object),
    END,
};
static const struct lps ipfs_spec = {.kind = LPS_OBJECT, .fields = ipfs_spec_fields};
static const struct lps_field ipfs_file_fields[] = {
    REQ("cid", &string),
    OPT("url", &string),
    OPT("gatewayUrl", &string),
    END,
};
static const struct lps ipfs_file = {.kind = LPS_OBJECT, .fields = ipfs_file_fields};
static const struct lps_field asset_ipfs_fields[] = {
    OPT("spec", &ipfs_spec),
    OPT("$ref", &any),
    OPT("nftMetadata", &ipfs_file),
    OPT("updatedAt", &number),
    END,
};
static const struct lps asset_ipfs = {.kind = LPS_OBJECT, .fields = asset_ipfs_fields};
static const struct lps_field storage_tasks_fields[] = {
    OPT("pending", &string),
    OPT("last", &string),
    OPT("failed", &string),
    END,
};
static const struct lps storage_tasks = {.kind = LPS_OBJECT, .fields = storage_tasks_fields};
static const char *const storage_phases[] = {"waiting", "processing", "ready",
                                             "failed",  "reverted",   NULL};
static const struct lps storage_phase = {.kind = LPS_ENUM, .values = storage_phases};
static const struct lps_field storage_status_fields[] = {
    REQ("phase", &storage_phase),
    OPT("progress", &number),
    OPT("errorMessage", &string),
    REQ("tasks", &storage_tasks),
    END,
};
static const struct lps storage_status = {.kind = LPS_OBJECT, .fields = storage_status_fields};
static const struct lps_field asset_storage_fields[] = {
    OPT("ipfs", &asset_ipfs),
    OPT("status", &storage_status),
    END,
};
static const struct lps asset_storage = {.kind = LPS_OBJECT, .fields = asset_storage_fields};

/* asset.ts: AssetStatus, Hash, VideoSpec and its Tracks */
static const char *const asset_phases[] = {"uploading", "waiting",  "processing", "ready",
                                           "failed",    "deleting", "deleted",    NULL};
static const struct lps asset_phase = {.kind = LPS_ENUM, .values = asset_phases};
static const struct lps_field asset_status_fields[] = {
    REQ("phase", &asset_phase),
    REQ("updatedAt", &number),
    OPT("progress", &number),
    OPT("errorMessage", &string),
    END,
};
static const struct lps asset_status = {.kind = LPS_OBJECT, .fields = asset_status_fields};
static const struct lps_field hash_fields[] = {
    OPT("hash", &string),
    OPT("algorithm", &string),
    END,
};
static const struct lps hash = {.kind = LPS_OBJECT, .fields = hash_fields};
static const struct lps hashes = {.kind = LPS_ARRAY, .nullable = true, .item = &hash};
static const struct lps_field track_fields[] = {
    REQ("type", &media_type),
    REQ("codec", &string),
    OPT("startTime", &number),
    OPT("duration", &number),
    OPT("bitrate", &number),
    OPT("width", &number),
    OPT("height", &number),
    OPT("pixelFormat", &string),
    OPT("fps", &number),
    OPT("channels", &number),
    OPT("sampleRate", &number),
    OPT("bitDepth", &number),
    END,
};
static const struct lps track = {.kind = LPS_OBJECT, .fields = track_fields};
static const struct lps tracks = {.kind = LPS_ARRAY, .item = &track};
static const struct lps_field video_spec_fields[] = {
    OPT("format", &string),
    OPT("duration", &number),
    OPT("bitrate", &number),
    OPT("tracks", &tracks),
    END,
};
static const struct lps video_spec = {.kind = LPS_OBJECT, .fields = video_spec_fields};

/* asset.ts: Asset */
static const struct lps_field asset_fields[] = {
    REQ("id", &string),
    OPT("type", &media_type),
    OPT("playbackId", &string),
    OPT("userId", &string),
    OPT("playbackUrl", &string),
    OPT("downloadUrl", &string),
    OPT("playbackPolicy", &policy),
    REQ("source", &source),
    OPT("creatorId", &creator),
    OPT("profiles", &profiles),
    OPT("storage", &asset_storage),
    OPT("status", &asset_status),
    REQ("name", &string),
    OPT("projectId", &string),
    OPT("createdAt", &number),
    OPT("createdByTokenName", &string),
    OPT("size", &number),
    OPT("hash", &hashes),
    OPT("videoSpec", &video_spec),
    END,
};
static const struct lps asset = {.kind = LPS_OBJECT, .fields = asset_fields};

/* task.ts: TaskUpload (other keys kept by the SDK, any value), Export, ExportData */
static const struct lps_field output_upload_fields[] = {OPT("assetSpec", &asset), END};
static const struct lps output_upload = {.kind = LPS_OBJECT, .fields = output_upload_fields};
static const struct lps_field export_ipfs_out_fields[] = {
    REQ("videoFileCid", &string),
    OPT("videoFileUrl", &string),
    OPT("videoFileGatewayUrl", &string),
    OPT("nftMetadataCid", &string),
    OPT("nftMetadataUrl", &string),
    OPT("nftMetadataGatewayUrl", &string),
    END,
};
static const struct lps export_ipfs_out = {.kind = LPS_OBJECT, .fields = export_ipfs_out_fields};
static const struct lps_field output_export_fields[] = {OPT("ipfs", &export_ipfs_out), END};
static const struct lps output_export = {.kind = LPS_OBJECT, .fields = output_export_fields};
static const struct lps_field cid_fields[] = {REQ("cid", &string), END};
static const struct lps cid_object = {.kind = LPS_OBJECT, .fields = cid_fields};
static const struct lps_field output_export_data_fields[] = {OPT("ipfs", &cid_object), END};
static const struct lps output_export_data = {.kind = LPS_OBJECT,
                                              .fields = output_export_data_fields};

/* task.ts: Output */
static const struct lps_field output_members[] = {
    OPT("upload", &output_upload),
    OPT("export", &output_export),
    OPT("exportData", &output_export_data),
    END,
};

/* ---- The checker ---- */

/* zod 4's .int(): Number.isSafeInteger. */
static bool lps_is_safeint(const json_t *v) {
    const double max = 9007199254740991.0; /* 2^53 - 1 */
    if (json_is_integer(v)) {
        json_int_t i = json_integer_value(v);
        return i <= (json_int_t)max && i >= -(json_int_t)max;
    }
    if (!json_is_real(v)) return false;
    double d = json_real_value(v);
    return isfinite(d) && trunc(d) == d && fabs(d) <= max;
}

static bool lps_conforms(const struct lps *s, const json_t *v) {
    if (json_is_null(v)) return s->nullable || s->kind == LPS_ANY;
    switch (s->kind) {
    case LPS_ANY:
        return true;
    case LPS_STRING:
        return json_is_string(v);
    case LPS_NUMBER:
        return json_is_integer(v) || (json_is_real(v) && isfinite(json_real_value(v)));
    case LPS_SAFEINT:
        return lps_is_safeint(v);
    case LPS_BOOL:
        return json_is_boolean(v);
    case LPS_ENUM:
        if (!json_is_string(v)) return false;
        for (const char *const *e = s->values; *e; e++)
            if (strcmp(json_string_value(v), *e) == 0) return true;
        return false;
    case LPS_OBJECT:
        if (!json_is_object(v)) return false;
        for (const struct lps_field *f = s->fields; f && f->key; f++) {
            const json_t *m = json_object_get(v, f->key);
            if (!m ? f->required : !lps_conforms(f->schema, m)) return false;
        }
        return true;
    case LPS_ARRAY: {
        if (!json_is_array(v)) return false;
        size_t i;
        const json_t *e;
        json_array_foreach(v, i, e) {
            if (!lps_conforms(s->item, e)) return false;
        }
        return true;
    }
    case LPS_RECORD: {
        if (!json_is_object(v)) return false;
        const char *k;
        const json_t *m;
        json_object_foreach((json_t *)v, k, m) {
            if (strcmp(k, "__proto__") != 0 && !lps_conforms(s->item, m)) return false;
        }
        return true;
    }
    case LPS_UNION:
        for (const struct lps *const *o = s->options; *o; o++)
            if (lps_conforms(*o, v)) return true;
        return false;
    }
    return false;
}

static const struct lps_field *lps_members(enum livepeer_part part) {
    return part == LIVEPEER_PART_PARAMS ? params_members : output_members;
}

bool livepeer_schema_conforms(enum livepeer_part part, const char *key, const json_t *v) {
    for (const struct lps_field *f = lps_members(part); f->key; f++)
        if (strcmp(key, f->key) == 0) return !v || lps_conforms(f->schema, v);
    return true;
}

json_t *livepeer_schema_keep(enum livepeer_part part, const char *text, size_t *dropped) {
    *dropped = 0;
    if (!text) return NULL;
    json_error_t je;
    json_t *o = json_loads(text, 0, &je);
    if (!json_is_object(o)) {
        json_decref(o);
        return NULL;
    }
    for (const struct lps_field *f = lps_members(part); f->key; f++) {
        const json_t *m = json_object_get(o, f->key);
        if (m && !lps_conforms(f->schema, m)) {
            json_object_del(o, f->key);
            (*dropped)++;
        }
    }
    return o;
}
