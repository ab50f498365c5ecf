declare module 'systemd-notify' {
  interface NotifyOptions {
    ready?: boolean;
    status?: string;
    pid?: number;
    booted?: boolean;
  }
  export default function notify(options: NotifyOptions): Promise<unknown>;
}
