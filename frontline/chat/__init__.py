"""Chat notifications through Apprise: urgent observations to the department's channel, change requests
to HR's channel (:mod:`frontline.chat.service`). Every message still goes by mail as well."""
