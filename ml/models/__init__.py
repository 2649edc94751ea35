"""Models: the zoo, fitting and evaluation, segments and explanations; nothing about where runs are stored."""
