"""SMS gateways that send registered templates: Alibaba Cloud (``aliyun``) and Tencent Cloud
(``tencent``), called with httpx and signed as their public API references specify
(docs/sms.md)."""
