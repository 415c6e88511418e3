"""The code under test: checkout takes the cart lock then the stock lock, restock the other way."""
import threading

cart_lock = threading.Lock()
stock_lock = threading.Lock()
stock = {"apples": 3}
cart: list = []


def checkout(item):
    with cart_lock:
        with stock_lock:
            stock[item] -= 1
            cart.append(item)


def restock(item, n):
    with stock_lock:
        with cart_lock:
            stock[item] += n
            cart.clear()
