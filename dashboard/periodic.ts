import { useEffect, useState } from 'preact/hooks';
import { api } from './api.js';

/**
 * GET `path` now and every `everyMs` after the previous answer (never two
 * at once) while the view is open; a new `path` starts over. For what
 * changes with time rather than with events: heartbeat ages, rates.
 */
export function usePeriodic<T>(path: string, everyMs: number): { data: T | null; error: string } {
  const [data, setData] = useState<T | null>(null);
  const [error, setError] = useState('');
  useEffect(() => {
    let stop = false;
    let timer: ReturnType<typeof setTimeout>;
    const tick = async () => {
      try {
        const d = await api<T>(path);
        if (!stop) {
          setData(d);
          setError('');
        }
      } catch (err) {
        if (!stop) setError((err as Error).message);
      }
      if (!stop) timer = setTimeout(tick, everyMs);
    };
    void tick();
    return () => {
      stop = true;
      clearTimeout(timer);
    };
  }, [path]);
  return { data, error };
}
