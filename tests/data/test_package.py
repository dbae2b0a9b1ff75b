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
