"""Default hyperparameters, shared by the estimator and the CLI (which must not import numpy
just to print --help).

Tuned on MovieLens 100k (official folds u1..u5; see docs/results.md, "How the defaults
were found"): many factors, strong factor regularization, weak bias regularization, and
factors that start tiny (init_std 0.005) and grow for a bounded number of epochs. From a
tiny start SGD learns the strongest directions of the rating matrix first, so stopping
near epoch 85 regularizes the rank as well as the norms; trained to convergence the same
model overfits slightly (RMSE 0.911 on u1..u5 after 120 epochs versus 0.904 at 85).

The factor regularization is 'auto' (``recsys.training.autoreg``): chosen on held-out ratings from a
ladder around REG_REFERENCE, the value tuned on MovieLens 100k, which MovieLens-like data
keep; cleaner or denser data get less.
"""

N_FACTORS = 200
N_EPOCHS = 85
LR = 0.005
REG = "auto"
#: The tuned factor regularization of MovieLens 100k, where ``reg='auto'`` starts.
REG_REFERENCE = 0.065
REG_BIAS = 0.01
INIT_STD = 0.005
SEED = 0
DTYPE = "float32"
METHOD = "sgd"
#: The training methods (``recsys.training.trainers``); here so the CLI can offer them cheaply.
METHODS = ("sgd", "funk", "gd", "svdpp")
LR_SCHEDULE = "constant"
LR_DECAY = 0.95
EARLY_STOPPING = 0
#: Regularization of the implicit item factors y_j of SVD++ (method 'svdpp' only); see
#: docs/results.md, "SVD++".
REG_IMPLICIT = 0.005
