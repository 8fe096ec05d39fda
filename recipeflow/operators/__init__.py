"""The operator library. Find an operator by its recipe name: ``recipeflow/operators/<name>.py``."""
