"""Workload of case ``sklearn_many_fits``: small models fitted one after another.

As a hyperparameter tuner does: the same estimator class with a new parameter
value each time, then a score on held-out data. ``FITS`` models, half
classifiers, half regressors. The harness times the whole process; the script
prints ``{"loop_s": ...}``, the loop alone: the training thread's share of the
agent's cost, without what the process does at exit (waiting for the plots).
"""

import json
import sys
import time

from sklearn.datasets import make_classification, make_regression
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import train_test_split

FITS = int(sys.argv[1]) if len(sys.argv) > 1 else 25

X, y = make_classification(n_samples=500, n_features=10, random_state=0)
X_train, X_val, y_train, y_val = train_test_split(X, y, random_state=0)
Xr, yr = make_regression(n_samples=500, n_features=10, noise=5.0, random_state=0)

start = time.perf_counter()
for index in range(FITS):
    if index % 2 == 0:
        clf = LogisticRegression(C=0.1 * (index + 1), max_iter=200).fit(X_train, y_train)
        clf.score(X_val, y_val)
    else:
        Ridge(alpha=0.1 * index).fit(Xr, yr)
print(json.dumps({"loop_s": time.perf_counter() - start}))
