"""defectlib: the plumbing of the steel-defect course, one module per concern, in layers.

Settings
    config       run settings from the environment; ``start_lesson`` decides a lesson's mode once
    errors       ``DataError``, the one exception for bad input data
    weights      ``pretrained``: the course's rule for downloaded weights (real, or random in a demo)
Data
    neu          the NEU database: find, index, decode, tf.data pipelines, a synthetic stand-in
    severstal    the Severstal data: find, read train.csv, tf.data pipelines, a synthetic stand-in
    rle          Kaggle's run-length encoding of masks
Models (generated from the lessons' pages by ``make lib``: edit the notebooks, not these)
    cnn          lesson 1: the seed's LeNet, the refined CNN, their schedules
    transfer     lesson 2: an ImageNet base with a new head, cached features, fine-tuning
    vit          lesson 3: patch embeddings, transformer blocks, the ViTs, the hybrid
    segmentation lesson 4: the ResNet50 gate, the ResUNet, the small gate
Model helpers
    ablation     lesson 1's ablation between the LeNet and the refined CNN
    model_tools  what trains (a table), batch-norm statistics for stand-in weights
    preprocess   Keras preprocessing layers (ResNet50's caffe mode), registered for safe loading
    vit_tools    augmentation, the transformer optimizer, the pretrained KerasHub ViT
    losses       segmentation losses and metrics, Kaggle's mean Dice
Pipeline and evaluation
    pipeline     the Severstal two-stage pipeline: thresholds, prediction, submission
    evaluate     predictions aligned with their labels
    compare      the comparison table of lesson 3: accuracy, time, size, speed
    inspection   lesson 5: class activation maps, calibration, LiteRT export
    timing       epoch timer
    plots        the figures the lessons share
Exercises
    checks       the exercises' self-checks
"""
