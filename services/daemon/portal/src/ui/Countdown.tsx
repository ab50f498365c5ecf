// "Try again in 12 s", counting down each second; calls onDone when the wait is over.
import { useEffect, useState } from 'preact/hooks';

export function useCountdown(seconds: number, onDone?: () => void): number {
  const [left, setLeft] = useState(seconds);
  useEffect(() => {
    const until = Date.now() + seconds * 1000;
    setLeft(seconds);
    const timer = setInterval(() => {
      const remaining = Math.max(0, Math.ceil((until - Date.now()) / 1000));
      setLeft(remaining);
      if (remaining === 0) {
        clearInterval(timer);
        onDone?.();
      }
    }, 250);
    return () => clearInterval(timer);
  }, [seconds]);
  return left;
}

export function Countdown({ seconds, onDone }: { seconds: number; onDone?: () => void }) {
  const left = useCountdown(seconds, onDone);
  return <span data-testid="countdown">{left > 0 ? `Try again in ${left} s.` : 'You can try again now.'}</span>;
}
