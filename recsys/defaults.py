"""Default hyperparameters, shared by the estimator and the CLI (which must not import numpy
just to print --help). Tuned on MovieLens 100k; see docs/results.md."""

N_FACTORS = 100
N_EPOCHS = 40
LR = 0.01
REG = 0.08
INIT_STD = 0.1
SEED = 0
DTYPE = "float32"
METHOD = "sgd"
LR_SCHEDULE = "constant"
LR_DECAY = 0.95
EARLY_STOPPING = 0
REG_BIAS = 0.08
