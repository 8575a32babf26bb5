include $(sort $(wildcard $(BR2_EXTERNAL_BUNKER_PATH)/package/*/*.mk))
