/** The gateway's version, reported as serverInfo.version and clientInfo.version. Kept in step with package.json. */
export const VERSION = '0.1.0';
