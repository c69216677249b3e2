-- Runs once, when the compose postgres service initialises its volume: MLflow's own database
-- next to vidra's (the trajectory store is POSTGRES_DB=vidra).
CREATE DATABASE mlflow;
