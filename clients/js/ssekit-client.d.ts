// Type declarations of ssekit-client.js. Full API: docs/client-js.md.

export declare const CONNECTING: 0;
export declare const OPEN: 1;
export declare const CLOSED: 2;

export type HeadersLike = Record<string, string> | [string, string][] | Headers;

export interface AttemptInfo {
  /** 0 for the first request, then counting every attempt. */
  attempt: number;
  /** The Last-Event-ID this attempt sends ("" for none). */
  lastEventId: string;
  url: string;
}

export interface Clock {
  now(): number;
  setTimeout(f: () => void, ms: number): unknown;
  clearTimeout(t: unknown): void;
  random?(): number;
}

export interface EventSourceOptions {
  withCredentials?: boolean;
  /** Headers, or a function called before every attempt (token refresh). */
  headers?: HeadersLike | ((info: AttemptInfo) => HeadersLike | Promise<HeadersLike>);
  method?: string;
  body?: BodyInit | ((info: { attempt: number }) => BodyInit | Promise<BodyInit>);
  credentials?: RequestCredentials;
  /** Reconnection time until the server sets one, ms (default 3000). */
  retry?: number;
  /** Cap of the exponential backoff, ms (default 30000). */
  maxRetry?: number;
  /** Cap of a server's Retry-After, ms (default 600000). */
  maxRetryAfter?: number;
  /** Inactivity timeout, ms; 0 (default) disables it. */
  timeout?: number;
  /** Resume after this id on the first request. */
  lastEventId?: string;
  /** false: the first end or failure closes the source. */
  reconnect?: boolean;
  /** One connection for all tabs of the origin. */
  share?: boolean | "worker" | "leader" | string;
  shareKey?: string;
  onComment?: (text: string) => void;
  fetch?: typeof fetch;
  clock?: Clock;
}

export interface SSEMessageEvent<T = string> extends MessageEvent<T> {
  /** Set when the event's block had a valid retry field, in ms. */
  retry?: number;
}

export declare class ErrorEvent extends Event {
  readonly type: "error";
  message: string;
  /** HTTP status; 0 for a network error or timeout. */
  status: number;
  kind: "network" | "end" | "timeout" | "status" | "content-type" | "";
  willReconnect: boolean;
  /** ms before the next attempt; -1 when none. */
  delay: number;
  /** The server's Retry-After in ms; -1 when none. */
  retryAfter: number;
}

export declare class HistoryGapEvent extends Event {
  readonly type: "historygap";
  lastEventId: string;
  resumedAfter: string;
}

export interface EventSourceEventMap {
  open: Event;
  message: SSEMessageEvent;
  error: ErrorEvent;
  historygap: HistoryGapEvent;
  leader: Event;
  subscription: Event & { subscription: Subscription; lastEventId: string };
}

export declare class EventSource extends EventTarget {
  constructor(url: string | URL, options?: EventSourceOptions);
  static readonly CONNECTING: 0;
  static readonly OPEN: 1;
  static readonly CLOSED: 2;
  readonly CONNECTING: 0;
  readonly OPEN: 1;
  readonly CLOSED: 2;
  readonly url: string;
  readonly withCredentials: boolean;
  readonly readyState: 0 | 1 | 2;
  /** The last event ID string, sent as Last-Event-ID on a reconnection. */
  readonly lastEventId: string;
  /** The reconnection time in ms. */
  readonly retry: number;
  readonly shareMode?: "leader" | "worker";
  readonly isLeader?: boolean;
  onopen: ((this: EventSource, ev: Event) => any) | null;
  onmessage: ((this: EventSource, ev: SSEMessageEvent) => any) | null;
  onerror: ((this: EventSource, ev: ErrorEvent) => any) | null;
  close(): void;
  addEventListener<K extends keyof EventSourceEventMap>(type: K, listener: (this: EventSource, ev: EventSourceEventMap[K]) => any, options?: boolean | AddEventListenerOptions): void;
  addEventListener(type: string, listener: (this: EventSource, ev: SSEMessageEvent) => any, options?: boolean | AddEventListenerOptions): void;
  removeEventListener(type: string, listener: (this: EventSource, ev: any) => any, options?: boolean | EventListenerOptions): void;
}

export interface ParsedEvent {
  type: string;
  data: string;
  id: string;
  retry?: number;
}

export interface Parser {
  feed(text: string): void;
  reset(): void;
  lastEventId: string;
  readonly pending: number;
}

export declare function createParser(callbacks?: {
  onEvent?: (ev: ParsedEvent) => void;
  onRetry?: (ms: number) => void;
  onComment?: (text: string) => void;
  onId?: (id: string) => void;
}): Parser;

export declare function backoffDelay(retry: number, cap: number, n: number, random?: () => number): number;
export declare function parseRetryAfter(value: string | null | undefined, now?: number): number;

export interface Selectors {
  topic?: string | string[];
  match?: string | string[];
  match_urlpattern?: string | string[];
  matchURLPattern?: string | string[];
  lastEventId?: string;
  last_event_id?: string;
  /** Draft-07 hubs: lastEventID instead of last_event_id. */
  legacy?: boolean;
}

export declare function mercureURL(hub: string | URL, selectors?: Selectors): string;

export interface Link {
  url: string;
  rel: string[];
  params: Record<string, string>;
}

export declare function parseLinks(header: string | null | undefined, base?: string): Link[];

export declare function discover(url: string | URL, options?: { fetch?: typeof fetch; headers?: HeadersLike; method?: string; credentials?: RequestCredentials }): Promise<{ hubs: string[]; self: string; topic: string; status: number }>;

export interface Subscription {
  id: string;
  type: "Subscription";
  topic: string;
  subscriber: string;
  active: boolean;
  payload?: unknown;
}

export declare function subscriptionsTopic(topic?: string, subscriber?: string): string;
export declare function subscribeSubscriptions(hub: string | URL, options?: EventSourceOptions & { topic?: string; subscriber?: string }): EventSource;
