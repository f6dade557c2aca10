"""Channel adapters: the only code that knows WeChat, WeCom or the bridge's wire formats."""
