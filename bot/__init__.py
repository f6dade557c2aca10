"""Lianxin (連心): the chatbot that links community police officers and residents."""
