"""dl_core: the models, training loop, data readers and Hub I/O behind the app and the train/ scripts.

Where code goes (one rule, applied everywhere):

- Shared infrastructure sits at the top level, used by two or more lessons:
  learner (the one training loop), callbacks, schedules, cli (the train scripts' shared flags, callbacks and
  save), hub (weight folders, int8 storage, the Hub), paths (repository, weights, DL_DATA_DIR), images (robust
  image loading), photos (photo folders, tensors, random crops), text (spaCy tokens + fastai's rules, Vocab,
  token cache), metrics (BLEU/chrF, McNemar), perceptual (feature extractor, Gram/content/style losses),
  backbones (ImageNet backbones: EfficientNet-Lite0 offline, torchvision's when online).
- Each lesson topic is one package with the same module names, where they apply:
      dl_core/<topic>/model.py      the nn.Module(s), config dataclass (= config.json) and loss
      dl_core/<topic>/data.py       readers, datasets, samplers, loaders
      dl_core/<topic>/training.py   how it is trained: the Learner set-up and the topic's callbacks
      dl_core/<topic>/evaluate.py   its metrics on a data set (what metrics.json and the data tests hold)
      dl_core/<topic>/infer.py      the inference wrapper the app's tab calls
      dl_core/<topic>/card.py       the model card, rendered from config.json + metrics.json
  A topic adds a module of its own only for an idea of its lesson: style/gatys.py (pixel optimisation),
  ulmfit/finetune.py (gradual unfreezing, discriminative LRs), ulmfit/pipeline.py (the time-budgeted GPU run).
  Topics: detection (lessons 8-9), ulmfit (10), translation (11), cifar (12-13), style (13-14), segmentation (14).
- train/<script>.py only parses flags and calls its topic package (and dl_core.cli); demos/<topic>.py only
  handles input and lays out the tab. dl_core imports nothing from train/ or demos/ (ulmfit/pipeline.py runs
  train/ scripts as its stages, as a shell would).
"""
