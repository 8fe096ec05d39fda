"""Everything around the operators: recipes, planner, Prefect flow, storage, versions, CLI."""
