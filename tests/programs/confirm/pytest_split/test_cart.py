import pytest
import shop


@pytest.fixture
def item():
    return "apples"


def test_checkout(item):
    shop.checkout(item)
    assert shop.cart[-1] == item
