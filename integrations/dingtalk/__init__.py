"""DingTalk: the robot's send APIs (batchSend to people, sessionWebhook replies) and their rendering."""
