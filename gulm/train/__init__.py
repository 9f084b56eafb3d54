"""Training: the Learner and its tasks, the one-cycle schedule, the LM phases
(:mod:`~gulm.train.phases`) and the classifier phase (:mod:`~gulm.train.classifier`)."""
