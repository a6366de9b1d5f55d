"""The shipped catalogue and the intent model trained on it (seed 0, the service's family), built once per test
session for every classifier test that reads them without changing them."""

import pytest

from relais.classifier.catalogue import Catalogue, load_catalogue
from relais.classifier.model import IntentModel


@pytest.fixture(scope="session")
def catalogue() -> Catalogue:
    return load_catalogue()


@pytest.fixture(scope="session")
def model(catalogue: Catalogue) -> IntentModel:
    return IntentModel.train(catalogue, seed=0)
