"""defectlib: the plumbing of the steel-defect course, one module per concern, in layers.

Settings
    config       the run's mode, decided once by ``start_lesson``; ``pretrained`` weights or a demo's random ones
    errors       ``DataError``, the one exception for bad input data
Data
    images       image files: list, decode, check, read into arrays or tf.data tensors
    rle          Kaggle's run-length encoding of masks
    neu          the NEU database: find, index, split, tf.data pipelines, VOC boxes
    severstal    the Severstal data: find, read train.csv, split, tf.data pipelines, mask statistics
    synthetic    synthetic stand-ins for both, in their real on-disk formats
Models (generated from the lessons' pages by ``make lib``: edit the notebooks, not these)
    cnn          lesson 1: the seed's LeNet, the refined CNN, their schedules
    transfer     lesson 2: an ImageNet base with a new head, cached features, fine-tuning
    vit          lesson 3: patch embeddings, transformer blocks, the ViTs, the hybrid, training above a cut
    segmentation lesson 4: the ResNet50 gate, the ResUNet, the small gate
    interpret    lesson 5: class activation maps, Grad-CAM, temperature scaling
Model helpers
    ablation     lesson 1's ablation between the LeNet and the refined CNN
    model_tools  what trains (a table), batch-norm statistics for stand-in weights, ResNet's preprocessing layer
    vit_tools    augmentation, the transformer optimizer, the pretrained KerasHub ViT
    losses       segmentation losses and metrics, Kaggle's mean Dice
Pipeline and evaluation
    pipeline     the Severstal two-stage pipeline: thresholds, mask cleaning, prediction
    submission   Kaggle's submission table: build, write, read, score
    compare      measuring models: aligned predictions, epoch times, the comparison table of lesson 3
    inspection   lesson 5: the pointing game, calibration, LiteRT export
    plots        the figures the lessons share
Exercises
    selfcheck    how a self-check speaks: one verdict, a hint that never gives the answer away
    exercises    the exercises' self-checks, one section per lesson
"""
