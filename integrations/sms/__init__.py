"""Customer text messages: the Aliyun SMS client and outbox sender, its quiet hours, opt-outs and dead-row tasks."""
