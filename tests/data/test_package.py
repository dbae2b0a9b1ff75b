"""pax_trax.data: the public names of trax.data.inputs and of the TFDS modules, and no
TensorFlow on import."""

import subprocess
import sys

import pax_trax.data
from pax_trax.data import inputs as di

# Every name that seed 000 lists under trax.data.inputs.
TRAX_DATA_INPUTS = """
Serial Parallel Shuffle Batch FilterEmptyExamples FilterByLength TruncateToLength PadToLength
BucketByLength MLM PrefixLM ConcatenateToLMInput CastTo AppendValue AddLossWeights UnBatch
Prefetch UniformlySeek CountAndSkip Log shuffle batch pad_to_max_dims bucket_by_length
add_loss_weights generate_random_noise_mask consume_noise_mask generate_sequential_chunks
addition_input_stream random_spans_noise_mask lower_endian_to_number number_to_lower_endian
random_number_lower_endian count_and_skip save_data_counters load_data_counters Inputs
make_inputs make_additional_stream make_parallel_stream batcher batch_fn random_inputs
sequence_copy_inputs simple_sequence_copy_inputs addition_inputs sine_inputs
""".split()


def test_every_trax_data_inputs_name_is_exported():
    for name in TRAX_DATA_INPUTS:
        assert callable(getattr(di, name)), name
        assert getattr(pax_trax.data, name) is getattr(di, name), name
        assert name in di.__all__ and name in pax_trax.data.__all__, name
    assert set(di.__all__) == set(TRAX_DATA_INPUTS) | {"data_counters"}


def test_import_does_not_load_tensorflow():
    code = (
        "import sys, pax_trax, pax_trax.data; assert 'tensorflow' not in sys.modules, 'tensorflow imported'"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_tfds_names_are_exported_from_data_and_data_tfds():
    from pax_trax.data import tf_datasets, tfds, tfds_prepare

    assert set(tfds.__all__) == {"TFDS", "data_streams", "dataset_to_stream",
                                 "download_and_prepare", "no_preprocess"}
    for name in tfds.__all__:
        assert getattr(pax_trax.data, name) is getattr(tfds, name), name
        assert name in pax_trax.data.__all__, name
    for name in tf_datasets.__all__:
        assert getattr(tfds, name) is getattr(tf_datasets, name), name
    assert tfds.download_and_prepare is tfds_prepare.download_and_prepare


# Every name that seed 000 lists under trax.data.tf_inputs, but the two registries of
# libraries that cannot be dependencies beside ours (tensor2tensor, t5: see pax_trax.data's docstring).
TRAX_DATA_TF_INPUTS = """
no_preprocess data_streams dataset_to_stream TFDS tokenize Tokenize detokenize ConvertToUnicode
vocab_size cifar10_no_augmentation_preprocess cifar10_augmentation_preprocess
cifar10_augmentation_flatten_preprocess downsampled_imagenet_flatten_bare_preprocess
concat_preprocess squeeze_targets_preprocess lm1b_preprocess wmt_preprocess wmt_concat_preprocess
lm_token_preprocessing bair_robot_pushing_hparams bair_robot_pushing_preprocess
sentencepiece_tokenize SentencePieceTokenize c4_preprocess c4_bare_preprocess_fn
filter_dataset_on_len truncate_dataset_on_len pad_dataset_to_length add_eos_to_output_features
generic_text_dataset_preprocess_fn download_and_prepare BertSingleSentenceInputs
BertDoubleSentenceInputs CreateBertInputs mask_random_tokens BertNextSentencePredictionInputs
CorpusToRandomChunks BertGlueTrainStream BertGlueEvalStream T5GlueTrainStream
T5GlueTrainStreamsParallel T5GlueEvalStream T5GlueEvalStreamsParallel T5GlueEvalTasks
compute_single_result compute_result single_op_to_python_command compute_program compute_nums
compute_ops process_single_mathqa_example convert_float_to_mathqa convert_to_subtract
CreateMathQAInputs CreateAquaInputs CreateDropInputs CreateAnnotatedDropInputs
""".split()
NOT_PROVIDED = {"t2t_problems", "get_t5_preprocessor_by_name"}


def test_every_trax_data_tf_inputs_name_is_exported_but_two_documented_ones():
    for name in TRAX_DATA_TF_INPUTS:
        assert callable(getattr(pax_trax.data, name, None)), name
        assert name in pax_trax.data.__all__, name
    for name in NOT_PROVIDED:
        assert not hasattr(pax_trax.data, name), name
        assert name in pax_trax.data.__doc__, f"{name}: say in pax_trax.data's docstring why not"
    for module in ("tf_preprocessing", "bert_inputs", "glue", "c4", "mathqa"):
        module = getattr(pax_trax.data, module)
        for name in module.__all__:
            assert getattr(pax_trax.data, name) is getattr(module, name), name
