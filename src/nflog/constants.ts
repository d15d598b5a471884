/** nfnetlink_log numbers (linux/netfilter/nfnetlink_log.h). */
export const NFNL_SUBSYS_ULOG = 4;
export const NFULNL_MSG_PACKET = (NFNL_SUBSYS_ULOG << 8) | 0; // 0x400
export const NFULNL_MSG_CONFIG = (NFNL_SUBSYS_ULOG << 8) | 1; // 0x401

export const NFULA_PACKET_HDR = 1;
export const NFULA_MARK = 2;
export const NFULA_TIMESTAMP = 3;
export const NFULA_IFINDEX_INDEV = 4;
export const NFULA_IFINDEX_OUTDEV = 5;
export const NFULA_HWADDR = 8;
export const NFULA_PAYLOAD = 9;
export const NFULA_PREFIX = 10;

export const NFULA_CFG_CMD = 1;
export const NFULA_CFG_MODE = 2;
export const NFULA_CFG_NLBUFSIZ = 3;
export const NFULA_CFG_TIMEOUT = 4;
export const NFULA_CFG_QTHRESH = 5;

export const NFULNL_CFG_CMD_BIND = 1;
export const NFULNL_CFG_CMD_UNBIND = 2;
export const NFULNL_COPY_PACKET = 2;
