import shop


def test_restock():
    shop.restock("apples", 2)
    assert shop.stock["apples"] >= 2
