"""Data-Juicer recipes, run as they are.

A Data-Juicer recipe (``project_name``, ``dataset_path``, ``export_path``, ``np``,
``text_keys``, ``process:`` with Data-Juicer operator names and parameters) is recognised by
:func:`is_datajuicer_recipe` (it has ``dataset_path``, ``project_name``, ``export_path`` or
``dataset``, and no ``inputs``), converted into a recipeflow chain recipe, and validated by the
normal machinery. Every error still names the recipe file, the line and the field path *as the
user wrote them* (``np``, ``process[2].clean_links_mapper.patern``), because issues found in the
converted recipe are translated back to where their value came from.

How the settings map:

* ``dataset_path`` -> one input per path (a file, a folder, or Data-Juicer's
  ``<weight> <path> ...`` list with weights of 1); ``suffixes`` narrows a folder to files with
  those extensions;
* ``text_keys`` -> the input's ``text_field`` (one key; several is an error);
* ``export_path`` -> the dataset root: the path **without its extension**
  (``outputs/demo/demo-processed.jsonl`` -> ``outputs/demo/demo-processed``), so two recipes that
  export into one folder keep separate datasets; the extension (or ``export_type``) picks the
  format: ``.jsonl``/``.json`` -> ``jsonl.gz``, ``.parquet`` -> ``parquet``, none -> parquet.
  The recipe's description (kept in every version's manifest) records the mapping;
* ``np`` -> ``run.workers`` with the ``processes`` executor (Data-Juicer's default np is 4);
* ``project_name`` -> ``name`` (characters other than letters, digits, ``_.-`` become ``-``).

Settings that only change how Data-Juicer runs (caching, tracing, checkpoints, Ray, fusion,
export sharding...) are accepted and ignored with one warning that lists them. Settings that
would change the resulting documents and that recipeflow cannot honour (``dataset`` configs,
weighted mixing, custom operators, encryption) are errors, as are keys Data-Juicer itself does
not know (with the nearest valid name).

One module because it is one conversion table, Data-Juicer's recipe keys to recipeflow's, read top to bottom.
"""

from __future__ import annotations

import logging
import posixpath
import re
from pathlib import PurePosixPath
from typing import Any

from recipeflow.io import readers
from recipeflow.recipe.errors import IssueCollector, RecipeInvalid, format_path
from recipeflow.recipe.models import Recipe
from recipeflow.recipe.validate import validate_data
from recipeflow.recipe.yaml_source import PathKey
from recipeflow.operators import registry

logger = logging.getLogger("recipeflow.datajuicer")

# Keys whose presence (and no `inputs`) marks a Data-Juicer recipe.
MARKER_KEYS = ("dataset_path", "project_name", "export_path", "dataset")
INPUT_PREFIX = "dataset"

# Data-Juicer 1.6.1's defaults for the settings that are converted.
DEFAULT_PROJECT_NAME = "hello_world"
DEFAULT_EXPORT_PATH = "./outputs/hello_world/hello_world.jsonl"
DEFAULT_NP = 4
DEFAULT_TEXT_KEY = "text"

# Every operator Data-Juicer 1.6.1 registers: a name here that recipeflow lacks is "not
# supported (yet)"; a name in neither list is a typo or another tool's operator.
DATA_JUICER_OPERATORS = frozenset(
    """
    agent_bad_case_signal_mapper agent_dialog_normalize_mapper agent_insight_llm_mapper
    agent_skill_insight_mapper agent_tool_relevance_mapper agent_tool_type_mapper
    agent_trace_coherence_mapper alphanumeric_filter audio_add_gaussian_noise_mapper
    audio_duration_filter audio_ffmpeg_wrapped_mapper audio_nmf_snr_filter audio_size_filter
    average_line_length_filter calibrate_qa_mapper calibrate_query_mapper calibrate_response_mapper
    character_repetition_filter chinese_convert_mapper clean_copyright_mapper clean_email_mapper
    clean_html_mapper clean_ip_mapper clean_links_mapper detect_character_attributes_mapper
    detect_character_locations_mapper detect_main_character_mapper
    dialog_clarification_quality_mapper dialog_coreference_mapper dialog_error_recovery_mapper
    dialog_intent_detection_mapper dialog_memory_consistency_mapper dialog_non_repetition_mapper
    dialog_proactivity_mapper dialog_sentiment_detection_mapper dialog_sentiment_intensity_mapper
    dialog_topic_detection_mapper dialog_topic_shift_mapper document_deduplicator
    document_line_deduplicator document_minhash_deduplicator
    document_minhash_deduplicator_with_uid document_simhash_deduplicator download_file_mapper
    entity_attribute_aggregator expand_macro_mapper export_to_lerobot_mapper
    extract_entity_attribute_mapper extract_entity_relation_mapper extract_event_mapper
    extract_keyword_mapper extract_nickname_mapper extract_support_text_mapper
    extract_tables_from_html_mapper fix_unicode_mapper flagged_words_filter
    frequency_specified_field_selector fused_sequential_batch_op general_field_filter
    general_fused_op generate_qa_from_examples_mapper generate_qa_from_text_mapper
    human_preference_annotation_mapper image_aesthetics_filter image_aspect_ratio_filter
    image_blur_mapper image_captioning_mapper image_deduplicator image_detection_yolo_mapper
    image_diffusion_mapper image_face_blur_mapper image_face_count_filter image_face_ratio_filter
    image_mmpose_mapper image_nsfw_filter image_ohem_selector image_pair_similarity_filter
    image_remove_background_mapper image_sam_3d_body_mapper image_segment_mapper
    image_shape_filter image_size_filter image_subplot_filter image_tagging_mapper
    image_tagging_vlm_mapper image_text_matching_filter image_text_similarity_filter
    image_watermark_filter imgdiff_difference_area_generator_mapper
    imgdiff_difference_caption_generator_mapper in_context_influence_filter
    instruction_following_difficulty_filter key_value_grouper language_id_score_filter
    latex_figure_context_extractor_mapper latex_merge_tex_mapper llm_analysis_filter
    llm_condition_filter llm_difficulty_score_filter llm_extract_mapper llm_perplexity_filter
    llm_quality_score_filter llm_ray_vllm_engine_pipeline llm_task_relevance_filter
    maximum_line_length_filter meta_tags_aggregator mllm_mapper most_relevant_entities_aggregator
    naive_grouper naive_reverse_grouper nested_aggregator nlpaug_en_mapper nlpcda_zh_mapper
    optimize_prompt_mapper optimize_qa_mapper optimize_query_mapper optimize_response_mapper
    pair_preference_mapper perplexity_filter phrase_grounding_recall_filter
    pii_llm_suspect_mapper pii_redaction_mapper punctuation_normalization_mapper
    python_file_mapper python_lambda_mapper query_intent_detection_mapper
    query_sentiment_detection_mapper query_topic_detection_mapper random_selector
    range_specified_field_selector ray_bts_minhash_cpp_deduplicator ray_bts_minhash_deduplicator
    ray_bts_minhash_deduplicator_with_uid ray_document_deduplicator ray_image_deduplicator
    ray_repartition_pipeline ray_video_deduplicator relation_identity_mapper
    remove_bibliography_mapper remove_comments_mapper remove_header_mapper
    remove_long_words_mapper remove_non_chinese_character_mapper remove_repeat_sentences_mapper
    remove_specific_chars_mapper remove_table_text_mapper
    remove_words_with_incorrect_substrings_mapper replace_content_mapper s3_download_file_mapper
    s3_upload_file_mapper sdxl_prompt2prompt_mapper sentence_augmentation_mapper
    sentence_split_mapper special_characters_filter specified_field_filter
    specified_numeric_field_filter stopwords_filter suffix_filter tags_specified_field_selector
    text_action_filter text_chunk_mapper text_embd_similarity_filter
    text_entity_dependency_filter text_length_filter text_pair_similarity_filter
    text_tagging_by_prompt_mapper token_num_filter tool_success_tagger_mapper
    topk_specified_field_selector usage_counter_mapper vggt_mapper
    video_active_speaker_detect_mapper video_aesthetics_filter video_aspect_ratio_filter
    video_atomic_action_segment_mapper video_audio_ASR_mapper
    video_audio_detect_age_gender_mapper video_audio_speech_emotion_mapper
    video_camera_calibration_deepcalib_mapper video_camera_calibration_droidcalib_mapper
    video_camera_calibration_moge_mapper video_camera_pose_megasam_mapper
    video_captioning_face_attribute_emotion_mapper video_captioning_from_audio_mapper
    video_captioning_from_frames_mapper video_captioning_from_human_tracks_mapper
    video_captioning_from_summarizer_mapper video_captioning_from_video_mapper
    video_captioning_from_vlm_mapper video_clip_reassembly_mapper video_deduplicator
    video_depth_estimation_mapper video_duration_filter video_extract_frames_mapper
    video_face_blur_mapper video_face_ratio_filter video_ffmpeg_wrapped_mapper
    video_frames_text_similarity_filter video_hand_action_compute_mapper
    video_hand_motion_smooth_mapper video_hand_reconstruction_hawor_mapper
    video_hand_reconstruction_mapper video_human_tracks_extraction_mapper
    video_human_tracks_face_demographic_mapper video_motion_score_filter
    video_motion_score_ptlflow_filter video_motion_score_raft_filter video_nsfw_filter
    video_object_segmenting_mapper video_ocr_area_ratio_filter video_remove_watermark_mapper
    video_resize_aspect_ratio_mapper video_resize_resolution_mapper video_resolution_filter
    video_split_by_duration_mapper video_split_by_key_frame_mapper video_split_by_scene_mapper
    video_tagging_from_audio_mapper video_tagging_from_frames_filter
    video_tagging_from_frames_mapper video_trajectory_overlay_mapper video_undistort_mapper
    video_watermark_filter video_whole_body_pose_estimation_mapper vlm_ray_vllm_engine_pipeline
    whitespace_normalization_mapper word_repetition_filter words_num_filter
    """.split()
)

# Top-level settings converted into the recipe.
_CONVERTED_KEYS = frozenset(
    {"project_name", "dataset_path", "export_path", "export_type", "np", "text_keys", "suffixes",
     "process"}
)
# Top-level settings that change how Data-Juicer runs, not which documents come out: ignored.
_IGNORED_KEYS = frozenset(
    """
    adaptive_batch_size audio_key audio_special_token auto auto_num auto_op_parallelism
    cache_compress checkpoint checkpoint_dir config conflict_resolve_strategy data_probe_algo
    data_probe_ratio debug ds_cache_dir elastic_juicer_adaptive_batching
    elastic_juicer_profile_seed encryption_key_path eoc_special_token event_log_dir event_logging
    executor_type export_aws_credentials export_extra_args export_in_parallel
    export_original_dataset export_shard_size fusion_strategy help hpo_config image_bytes_key
    image_key image_special_token job_id keep_hashes_in_res_ds keep_stats_in_res_ds
    load_dataset_kwargs load_jsonl_lenient mapper_fusion mapper_fusion_vram_limit
    min_common_dep_num_to_combine op_fusion op_list_to_mine op_list_to_trace open_insight_mining
    open_monitor open_tracer override_num_blocks partition partition_dir partition_size
    percentiles ray_address read_options resume save_stats_in_one_file skip_op_error
    strict_preflight temp_dir trace_keys trace_num turbo use_cache use_checkpoint use_dag
    validators video_key video_special_token work_dir
    """.split()
)
# Top-level settings that change the documents and cannot be honoured: an error unless unset.
_UNSUPPORTED_KEYS = {
    "dataset": "dataset configs (mixing, sampling, remote sources) are not supported; "
    "give the data as `dataset_path`",
    "generated_dataset_config": "generated datasets are not supported; give `dataset_path`",
    "custom_operator_paths": "custom Data-Juicer operators cannot run in recipeflow; write a "
    "recipeflow operator (recipeflow/operators/<name>.py) instead",
    "decrypt_after_reading": "encrypted inputs are not supported; decrypt them first",
    "encrypt_before_export": "encrypted outputs are not supported; recipeflow would write "
    "plain text",
}
_KNOWN_KEYS = _CONVERTED_KEYS | _IGNORED_KEYS | set(_UNSUPPORTED_KEYS)

# Arguments every Data-Juicer operator accepts that only change how it runs: ignored.
_OPERATOR_RUN_ARGUMENTS = frozenset(
    """
    accelerator adaptive_batching audio_key auto_op_parallelism batch_mode batch_size
    cpu_required gpu_required history_key image_bytes_key image_key index_key input_columns
    instruction_key mem_required memory num_cpus num_gpus num_proc output_columns prompt_key
    query_key ray_execution_mode response_key runtime_env skip_op_error system_key turbo
    video_key work_dir
    """.split()
)
# Data-Juicer parameter names that recipeflow's operator of the same name spells differently.
_RENAMED_PARAMETERS = {
    "text_length_filter": {"min_len": "min_length", "max_len": "max_length"},
}
_EXPORT_FORMATS = {".jsonl": "jsonl.gz", ".json": "jsonl.gz", ".parquet": "parquet", "": "parquet"}
_EXPORT_TYPES = {"jsonl": "jsonl.gz", "json": "jsonl.gz", "parquet": "parquet"}
_COMPRESSIONS = (".gz", ".zst", ".zstd", ".bz2", ".xz", ".lz4")
_FILE_EXTENSION = re.compile(r"\.[A-Za-z0-9]{1,8}$")


# ---------------------------------------------------------------------------------------------
# Recognising and loading


def is_datajuicer_recipe(data: Any) -> bool:
    """A Data-Juicer recipe: a mapping with one of its marker keys and no ``inputs``."""
    return (
        isinstance(data, dict)
        and "inputs" not in data
        and any(key in data for key in MARKER_KEYS)
    )


def supported_operators() -> list[str]:
    """The Data-Juicer operators recipeflow runs: those registered under their names."""
    return sorted(name for name in registry.operators() if name in DATA_JUICER_OPERATORS)


def parse_datajuicer_recipe(data: dict[str, Any], issues: IssueCollector) -> Recipe:
    """Convert and validate a Data-Juicer recipe; ``issues`` carries the file, the line of
    every field and the ``--set`` overrides, and may already hold problems (duplicate keys).

    Raises :class:`RecipeInvalid` listing every problem, each where the user wrote it.
    """
    dj_issues = _DataJuicerIssues(issues.source, issues.lines, issues.overridden, list(issues.found))
    conversion = _Conversion(data, dj_issues)
    converted = conversion.recipe()
    _warn_ignored(issues.source, conversion.ignored)
    recipe = validate_data(converted, dj_issues)
    if recipe is None or dj_issues.found:
        raise RecipeInvalid(dj_issues.sorted(), issues.source)
    return recipe


def convert_datajuicer_recipe(data: dict[str, Any], source: str = "<recipe>") -> Recipe:
    """Convert and validate a Data-Juicer recipe given as data (as from ``yaml.safe_load``)."""
    return parse_datajuicer_recipe(data, IssueCollector(source))


def _warn_ignored(source: str, ignored: list[str]) -> None:
    if ignored:
        logger.warning(
            "%s: Data-Juicer settings ignored (they change how Data-Juicer runs, not the "
            "documents): %s",
            source,
            ", ".join(ignored),
        )


# ---------------------------------------------------------------------------------------------
# Issues, located where the user wrote them


class _DataJuicerIssues(IssueCollector):
    """Issues of the converted recipe, reported at the Data-Juicer field they came from.

    ``origins`` maps a converted field path to the Data-Juicer path it was made from; the
    validation layers report converted paths, which :meth:`add` translates.
    """

    def __init__(self, source: str, lines: dict, overridden: dict, found: list) -> None:
        super().__init__(source, dict(lines), dict(overridden), found)
        self.origins: list[tuple[PathKey, PathKey, bool]] = []  # (converted, original, keep rest)
        self.reported: list[PathKey] = []

    def map_field(self, converted: PathKey, original: PathKey, keep_rest: bool = False) -> None:
        """Issues at or under ``converted`` are reported at ``original`` (plus, with
        ``keep_rest``, the rest of their path)."""
        self.origins.append((converted, original, keep_rest))

    def add_original(self, loc: PathKey, message: str, **hints: str | None) -> None:
        """An issue found in the Data-Juicer recipe itself; later issues under ``loc`` are
        consequences and are dropped."""
        self.reported.append(loc)
        super().add(loc, message, **hints)

    def add(self, loc: PathKey, message: str, **hints: str | None) -> None:  # type: ignore[override]
        original = self.original_of(loc)
        if any(original[: len(done)] == done for done in self.reported):
            return
        super().add(original, message, **hints)

    def original_of(self, loc: PathKey) -> PathKey:
        best: tuple[PathKey, PathKey, bool] | None = None
        for converted, original, keep_rest in self.origins:
            if loc[: len(converted)] == converted and (best is None or len(converted) > len(best[0])):
                best = (converted, original, keep_rest)
        if best is None:
            return loc
        converted, original, keep_rest = best
        return original + loc[len(converted):] if keep_rest else original


# ---------------------------------------------------------------------------------------------
# Conversion


class _Conversion:
    """One Data-Juicer recipe turned into recipeflow's chain form."""

    def __init__(self, data: dict[str, Any], issues: _DataJuicerIssues) -> None:
        self.data = data
        self.issues = issues
        self.ignored: list[str] = []

    def recipe(self) -> dict[str, Any]:
        self._check_top_level_keys()
        text_field = self._text_field()
        inputs = self._inputs(text_field)
        output = self._output()
        steps = self._process(text_field)
        name = self._name()
        return {
            "name": name,
            "description": self._description(output["path"]),
            "inputs": inputs,
            "process": steps,
            "output": output,
            "run": self._run(),
        }

    # --- top level

    def _check_top_level_keys(self) -> None:
        for key, value in self.data.items():
            loc: PathKey = (key,)
            if key in _CONVERTED_KEYS:
                continue
            if key in _IGNORED_KEYS:
                self.ignored.append(str(key))
            elif key in _UNSUPPORTED_KEYS:
                if value not in (None, False, [], {}, ""):
                    self.issues.add_original(loc, _UNSUPPORTED_KEYS[key])
            else:
                suggestion = registry.suggest(str(key), sorted(_KNOWN_KEYS))
                self.issues.add_original(
                    loc,
                    "not a Data-Juicer setting",
                    expected=None if suggestion else "a Data-Juicer 1.6 setting (see its config_all.yaml)",
                    suggestion=suggestion,
                )

    def _name(self) -> str:
        self.issues.map_field(("name",), ("project_name",))
        raw = self.data.get("project_name")
        if raw is None:
            return DEFAULT_PROJECT_NAME
        if not isinstance(raw, (str, int, float)) or isinstance(raw, bool):
            self.issues.add_original(("project_name",), "expected a name")
            return DEFAULT_PROJECT_NAME
        return re.sub(r"[^A-Za-z0-9_.-]+", "-", str(raw)).strip("-") or DEFAULT_PROJECT_NAME

    def _description(self, root: str) -> str:
        export_path = self.data.get("export_path", DEFAULT_EXPORT_PATH)
        text = (
            f"Data-Juicer recipe (project_name {self.data.get('project_name', DEFAULT_PROJECT_NAME)!r}); "
            f"export_path {export_path!r} is written as the dataset root {root!r}"
        )
        if self.ignored:
            text += "; Data-Juicer settings ignored: " + ", ".join(self.ignored)
        return text

    def _run(self) -> dict[str, Any]:
        self.issues.map_field(("run",), ("np",))
        return {"executor": "processes", "workers": self.data.get("np", DEFAULT_NP)}

    # --- inputs

    def _text_field(self) -> str:
        raw = self.data.get("text_keys", DEFAULT_TEXT_KEY)
        loc: PathKey = ("text_keys",)
        keys = [raw] if isinstance(raw, str) else raw
        if not isinstance(keys, list) or not keys or not all(isinstance(k, str) and k for k in keys):
            self.issues.add_original(loc, "expected a field name, or a list of one")
            return DEFAULT_TEXT_KEY
        if len(keys) > 1:
            self.issues.add_original(
                loc,
                f"{len(keys)} text keys ({', '.join(keys)}): recipeflow processes one text field "
                f"per recipe",
                expected="one key; run the recipe once per key",
            )
        if "." in keys[0]:
            self.issues.add_original(
                loc,
                f"nested text key {keys[0]!r} is not supported",
                expected="a top-level field of the records",
            )
        return keys[0]

    def _inputs(self, text_field: str) -> dict[str, Any]:
        loc: PathKey = ("dataset_path",)
        paths = self._dataset_paths()
        suffixes = self._suffixes()
        locations = [
            location for path in paths for location in _with_suffixes(path, suffixes)
        ]
        for path in paths:
            self._check_input_format(path)
        names = [INPUT_PREFIX] if len(locations) == 1 else [
            f"{INPUT_PREFIX}_{index}" for index in range(1, len(locations) + 1)
        ]
        inputs = {}
        for name, location in zip(names, locations):
            inputs[name] = {"path": location, "text_field": text_field}
            self.issues.map_field(("inputs", name, "text_field"), ("text_keys",))
        self.issues.map_field(("inputs",), loc)
        return inputs or {INPUT_PREFIX: {"path": "", "text_field": text_field}}

    def _dataset_paths(self) -> list[str]:
        """The paths of ``dataset_path``: one, or Data-Juicer's ``[weight] path ...`` list."""
        loc: PathKey = ("dataset_path",)
        raw = self.data.get("dataset_path")
        if raw is None or raw == "":
            if "dataset" not in self.data:  # else the `dataset` error says it all
                self.issues.add_original(
                    loc, "missing", expected="the file or folder to read (JSONL, Parquet...)"
                )
            return []
        if not isinstance(raw, str):
            self.issues.add_original(loc, "expected a path (a file or a folder)")
            return []
        paths, weights = _split_weighted_paths(raw)
        odd = [w for w in weights if w != 1.0]
        if odd:
            self.issues.add_original(
                loc,
                f"weights ({', '.join(f'{w:g}' for w in odd)}) sample the datasets: weighted "
                f"mixing is not supported",
                expected="paths without weights (or weight 1)",
            )
        if not paths:
            self.issues.add_original(loc, "no path, only weights")
        return paths

    def _suffixes(self) -> list[str]:
        raw = self.data.get("suffixes")
        if raw is None or raw == [] or raw == "":
            return []
        values = [raw] if isinstance(raw, str) else raw
        if not isinstance(values, list) or not all(isinstance(v, str) and v for v in values):
            self.issues.add_original(("suffixes",), "expected a suffix or a list of suffixes")
            return []
        return ["." + v.lstrip(".") for v in values]

    def _check_input_format(self, path: str) -> None:
        """A file whose extension names a format recipeflow cannot read is an error now,
        rather than a failed run."""
        if not _looks_like_file(path):
            return
        try:
            readers.infer_format(path)
        except ValueError:
            extension = "".join(PurePosixPath(path).suffixes[-2:]) or path
            self.issues.add_original(
                ("dataset_path",),
                f"recipeflow cannot read {extension} files ({path})",
                expected="JSONL (.jsonl, .json; .gz or .zst compressed), Parquet or text (.txt, .md)",
            )

    # --- output

    def _output(self) -> dict[str, Any]:
        loc: PathKey = ("export_path",)
        raw = self.data.get("export_path", DEFAULT_EXPORT_PATH)
        self.issues.map_field(("output",), loc)
        if not isinstance(raw, str) or not raw.strip():
            self.issues.add_original(loc, "expected a path such as outputs/demo/result.jsonl")
            return {"path": "", "format": "parquet", "keep_rejected": False}
        root, extension = _split_export_path(raw.strip())
        output_format = self._export_format(extension)
        return {"path": root, "format": output_format, "keep_rejected": False}

    def _export_format(self, extension: str) -> str:
        export_type = self.data.get("export_type")
        if export_type is not None:
            self.issues.map_field(("output", "format"), ("export_type",))
            chosen = _EXPORT_TYPES.get(str(export_type).lower().lstrip("."))
            if chosen is None:
                self.issues.add_original(
                    ("export_type",),
                    f"export type {export_type!r} is not supported",
                    expected="jsonl, json or parquet",
                )
                return "parquet"
            return chosen
        chosen = _EXPORT_FORMATS.get(extension)
        if chosen is None:
            self.issues.add_original(
                ("export_path",),
                f"cannot export {extension} files",
                expected="a path ending in .jsonl, .json or .parquet (or a folder)",
            )
            return "parquet"
        return chosen

    # --- process

    def _process(self, text_field: str) -> list[Any]:
        raw = self.data.get("process")
        self.issues.map_field(("process",), ("process",), keep_rest=True)
        if raw is None:
            self.issues.add_original(
                ("process",), "missing: the recipe does nothing",
                expected="a list of Data-Juicer operators: `- clean_links_mapper: {}`",
            )
            return []
        if not isinstance(raw, list):
            return raw  # the normal validation says what is wrong
        return [self._step(index, step, text_field) for index, step in enumerate(raw)]

    def _step(self, index: int, step: Any, text_field: str) -> Any:
        if not isinstance(step, dict) or len(step) != 1:
            return step  # the normal validation says what is wrong
        [(name, params)] = step.items()
        loc: PathKey = ("process", index, name)
        operators = registry.operators()
        if name not in operators:
            self._report_unsupported(loc, str(name))
            return step
        if not isinstance(params, dict):
            return step
        return {name: self._parameters(loc, str(name), params, text_field)}

    def _report_unsupported(self, loc: PathKey, name: str) -> None:
        supported = supported_operators()
        listing = ", ".join(supported)
        if name in DATA_JUICER_OPERATORS:
            message = f"Data-Juicer operator {name!r} is not supported by recipeflow"
        else:
            message = f"unknown operator {name!r} (not a Data-Juicer 1.6 operator)"
        self.issues.add_original(
            loc,
            message,
            expected=f"a supported Data-Juicer operator: {listing} (or a recipeflow operator: "
            f"`recipeflow ops`)",
            suggestion=registry.suggest(name, registry.operators()),
        )

    def _parameters(
        self, loc: PathKey, name: str, params: dict[Any, Any], text_field: str
    ) -> dict[Any, Any]:
        """Data-Juicer's arguments as recipeflow's operator takes them."""
        own_fields = set(registry.get(name).Params.model_fields)
        renames = _RENAMED_PARAMETERS.get(name, {})
        converted: dict[Any, Any] = {}
        for key, value in params.items():
            if key in own_fields:
                converted[key] = value
            elif key == "text_key":
                if value != text_field:
                    self.issues.add_original(
                        loc + (key,),
                        f"a text key of its own ({value!r}) is not supported: every operator "
                        f"reads text_keys ({text_field!r})",
                        expected=f"{text_field!r}, or no text_key",
                    )
            elif key in _OPERATOR_RUN_ARGUMENTS:
                self.ignored.append(format_path(loc + (key,)))
            elif key in renames:
                converted[renames[key]] = value
                self.issues.map_field(loc + (renames[key],), loc + (key,))
            else:
                converted[key] = value  # unknown: the operator's validation names it
        return converted


# ---------------------------------------------------------------------------------------------
# Paths


def _split_weighted_paths(raw: str) -> tuple[list[str], list[float]]:
    """Data-Juicer's ``"[w1] path1 [w2] path2"``: the paths, and the weight of each."""
    paths: list[str] = []
    weights: list[float] = []
    pending: float | None = None
    for token in raw.split():
        try:
            pending = float(token)
            continue
        except ValueError:
            pass
        paths.append(token)
        weights.append(1.0 if pending is None else pending)
        pending = None
    return paths, weights


def _looks_like_file(path: str) -> bool:
    return bool(_FILE_EXTENSION.search(posixpath.basename(path.rstrip("/"))))


def _with_suffixes(path: str, suffixes: list[str]) -> list[str]:
    """A folder narrowed to files with the given suffixes (a glob each); a file as it is."""
    if not suffixes or _looks_like_file(path):
        return [path]
    folder = path.rstrip("/")
    return [f"{folder}/**/*{suffix}" for suffix in suffixes]


def _split_export_path(path: str) -> tuple[str, str]:
    """``outputs/x/res.jsonl.gz`` -> (``outputs/x/res``, ``.jsonl``); a folder has no extension."""
    trimmed = path.rstrip("/") or path
    if path.endswith("/"):
        return trimmed, ""
    stem = trimmed
    for compression in _COMPRESSIONS:
        if stem.lower().endswith(compression):
            stem = stem[: -len(compression)]
            break
    base = posixpath.basename(stem)
    match = _FILE_EXTENSION.search(base)
    if not match or match.start() == 0:
        return trimmed, ""
    return stem[: len(stem) - len(match.group(0))], match.group(0).lower()


def schema_facts() -> dict[str, Any]:
    """What the JSON Schema of Data-Juicer recipes needs from the conversion: the top-level keys
    Data-Juicer knows, the run arguments every operator takes, and renamed parameters."""
    return {
        "marker_keys": list(MARKER_KEYS),
        "known_keys": sorted(_KNOWN_KEYS),
        "run_arguments": sorted(_OPERATOR_RUN_ARGUMENTS),
        "renamed_parameters": {op: dict(renames) for op, renames in _RENAMED_PARAMETERS.items()},
    }
